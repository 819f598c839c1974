// Package testmain is the TestMain of the packages whose tests run on the
// binding's EAL as dpdk.Init starts it with no devices: dpdktest.Run with
// the start function and the not-built-in error filled in, so that each
// such package states only its Options. (dpdktest cannot do it: the
// binding's own tests use dpdktest, which therefore does not import the
// binding.)
package testmain

import (
	"os"
	"testing"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/dataplane/dpdk/dpdktest"
)

// Run is dpdktest.Run starting the EAL with dpdk.Init (no devices, the
// EAL's warnings to stderr) and with o.Unavailable set to dpdk.ErrNoDPDK
// when o leaves it nil. It returns the exit code for os.Exit.
func Run(m *testing.M, env *dpdktest.Env[*dpdk.EAL], o dpdktest.Options) int {
	if o.Unavailable == nil {
		o.Unavailable = dpdk.ErrNoDPDK
	}
	return dpdktest.Run(m, env, o, func(cfg dataplane.EALConfig) (*dpdk.EAL, error) {
		return dpdk.Init(cfg, nil, zerolog.New(os.Stderr).Level(zerolog.WarnLevel))
	})
}
