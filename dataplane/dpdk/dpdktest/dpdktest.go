// Package dpdktest starts the one EAL a test process may have, for the
// tests of packages that run on DPDK: on ordinary pages (--no-huge) under a
// file prefix carrying the pid, so that parallel test processes and the
// leftovers of a crashed run never share runtime files. It fails the run
// when DPDK cannot run and CI is set, and otherwise lets the tests skip
// with the reason; after the tests it checks that closing the EAL left
// nothing in /var/run/dpdk or the hugetlbfs mounts.
//
// It does not import the binding (whose own tests use it too, and would
// otherwise import themselves): the caller starts the EAL in the function
// it passes to Run, and Env holds it as the type parameter E.
package dpdktest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/poolrelay/poolrelay/dataplane"
)

// RuntimeRoot is where the EAL keeps its runtime directories as root.
const RuntimeRoot = "/var/run/dpdk"

// EAL is what Run needs of a started EAL; *dpdk.EAL has it.
type EAL interface {
	RuntimeDir() string
	Close() error
}

// Options are a package's test EAL.
type Options struct {
	// Name prefixes Run's messages: the package's name.
	Name string
	// Prefix is the file prefix without the pid, e.g. "poolrelay_test_".
	// No package's Prefix may start with another's: the stale sweep
	// parses the pid after it.
	Prefix string
	// MemoryMB and LogLevel go to the EALConfig as they are.
	MemoryMB, LogLevel int
	// NotRoot is the skip reason outside root; empty for the usual one.
	NotRoot string
	// Distinct refuses a machine with one CPU instead of running the main
	// and the worker core on the same CPU.
	Distinct bool
	// Unavailable is the error (tested with errors.Is) by which the start
	// function says DPDK is not built in: the tests then skip outside CI.
	Unavailable error
}

// Env is the test process's EAL, the configuration and cores Run gave it
// and, when the tests cannot run, why.
type Env[E EAL] struct {
	EAL                E
	Config             dataplane.EALConfig
	MainCore, WorkCore int
	skip               string
}

// Need skips t when DPDK cannot run here, saying why (never in CI: Run has
// failed the run there instead), and returns the EAL.
func (e *Env[E]) Need(t testing.TB) E {
	t.Helper()
	if e.skip != "" {
		t.Skip(e.skip)
	}
	return e.EAL
}

// Run fills env, starts the EAL with start, runs m and closes the EAL, and
// returns the exit code for os.Exit: nonzero when the tests fail, the EAL
// cannot start (or, in CI, cannot run at all), or its Close fails or
// leaves files behind.
func Run[E EAL](m *testing.M, env *Env[E], o Options, start func(dataplane.EALConfig) (E, error)) int {
	ci := os.Getenv("CI") != ""
	if os.Geteuid() != 0 {
		env.skip = o.NotRoot
		if env.skip == "" {
			env.skip = "not root: DPDK needs root for its runtime directory and memory"
		}
		if ci {
			fmt.Fprintf(os.Stderr, "%s: DPDK tests must run as root in CI: %s\n", o.Name, env.skip)
			return 1
		}
		return m.Run()
	}
	SweepStale(o.Prefix)
	var err error
	env.MainCore, env.WorkCore, err = TwoCPUs(o.Distinct)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", o.Name, err)
		return 1
	}
	env.Config = dataplane.EALConfig{
		Cores:      fmt.Sprintf("%d,%d", env.MainCore, env.WorkCore),
		NoHuge:     true, // --in-memory is refused with --no-huge
		MemoryMB:   o.MemoryMB,
		FilePrefix: o.Prefix + strconv.Itoa(os.Getpid()),
		LogLevel:   o.LogLevel,
	}
	env.EAL, err = start(env.Config)
	if o.Unavailable != nil && errors.Is(err, o.Unavailable) && !ci {
		env.skip = err.Error()
		return m.Run()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: EAL init: %v\n", o.Name, err)
		return 1
	}
	code := m.Run()
	dir := env.EAL.RuntimeDir()
	if err := env.EAL.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: EAL close: %v\n", o.Name, err)
		code = 1
	}
	if left := Leftovers(dir, env.Config.FilePrefix); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "%s: files left behind after Close: %v\n", o.Name, left)
		code = 1
	}
	return code
}

// SweepStale removes the runtime directories of earlier test processes
// under prefix that died without closing the EAL (a panicking test skips
// Run's cleanup).
func SweepStale(prefix string) {
	dirs, _ := filepath.Glob(filepath.Join(RuntimeRoot, prefix+"*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), prefix))
		if err == nil && pid != os.Getpid() && unix.Kill(pid, 0) == unix.ESRCH {
			os.RemoveAll(d)
		}
	}
}

// TwoCPUs returns the first two CPUs the process may run on, the EAL's
// main core and the worker core; on a single-CPU machine the same one
// twice, unless distinct.
func TwoCPUs(distinct bool) (main, work int, err error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 0, 0, fmt.Errorf("dpdktest: %w", err)
	}
	var cpus []int
	for c := 0; c < len(set)*64 && len(cpus) < 2; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	switch {
	case len(cpus) == 0:
		return 0, 0, errors.New("dpdktest: no CPU in the affinity mask")
	case len(cpus) == 1 && distinct:
		return 0, 0, errors.New("dpdktest: the tests need two CPUs")
	case len(cpus) == 1:
		return cpus[0], cpus[0], nil
	}
	return cpus[0], cpus[1], nil
}

// Leftovers lists what a closed EAL left in its runtime directory or in
// the hugetlbfs mounts under its file prefix.
func Leftovers(runtimeDir, prefix string) []string {
	var left []string
	if _, err := os.Stat(runtimeDir); err == nil {
		left = append(left, runtimeDir)
	}
	for _, dir := range []string{"/dev/hugepages", "/mnt/huge"} {
		m, _ := filepath.Glob(filepath.Join(dir, prefix+"*"))
		left = append(left, m...)
	}
	return left
}
