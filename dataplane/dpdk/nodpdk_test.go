//go:build !linux || !cgo

package dpdk

import (
	"errors"
	"os"
	"testing"

	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/internal/logging"
)

// TestDPDK stands for the DPDK tests, which this build cannot compile: it
// skips, saying why, except in CI, where they must run.
func TestDPDK(t *testing.T) {
	if os.Getenv("CI") != "" {
		t.Fatal("the DPDK tests need a cgo build on Linux with libdpdk-dev; CI must not skip them")
	}
	t.Skip("built without cgo or not on Linux: the DPDK tests need cgo and libdpdk-dev")
}

// Without cgo the binding must say so, not pretend: Init returns ErrNoDPDK
// and no EAL.
func TestInitWithoutDPDK(t *testing.T) {
	e, err := Init(dataplane.DefaultEALConfig(), nil, logging.Nop())
	if e != nil || !errors.Is(err, ErrNoDPDK) {
		t.Fatalf("Init = %v, %v; want nil, ErrNoDPDK", e, err)
	}
	if _, err := NewMbufVec(1); !errors.Is(err, ErrNoDPDK) {
		t.Fatalf("NewMbufVec: %v, want ErrNoDPDK", err)
	}
}
