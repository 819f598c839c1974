package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	nrHugepages  = "/proc/sys/vm/nr_hugepages"
	hugepageSize = 2 << 20 // the machines' default hugepage size
)

// memory is the memory mode both testpmd and the binding run with.
type memory struct {
	noHuge  bool
	hugeDir string // hugetlbfs mount with 2 MiB pages, when !noHuge
	pages   int    // hugepages reserved for the run
	why     string // why the run fell back to --no-huge
	undo    []func() error
}

// describe says which mode was used, for the report.
func (m *memory) describe() string {
	if m.noHuge {
		return "--no-huge (" + m.why + ")"
	}
	return fmt.Sprintf("hugepages: %d x 2 MiB reserved, hugetlbfs at %s, --in-memory", m.pages, m.hugeDir)
}

// ealArgs are the EAL memory arguments for testpmd. With hugepages the EAL
// takes pages as its pools need them (no -m, which would make it map and
// zero all memMB at start); --no-huge needs a fixed size.
func (m *memory) ealArgs(memMB int) []string {
	if m.noHuge {
		return []string{"--no-huge", "-m", strconv.Itoa(memMB)}
	}
	return []string{"--in-memory", "--huge-dir", m.hugeDir}
}

// release undoes the reservation and the mount, newest first.
func (m *memory) release() error {
	var first error
	for i := len(m.undo) - 1; i >= 0; i-- {
		if err := m.undo[i](); err != nil && first == nil {
			first = err
		}
	}
	m.undo = nil
	return first
}

// setupMemory reserves enough 2 MiB hugepages for memMB (on top of what is
// free already) and finds or mounts a hugetlbfs for them. Anything that
// fails falls back to --no-huge, with the reason; the caller releases.
func setupMemory(memMB int, forceNoHuge bool) *memory {
	m := &memory{}
	fallback := func(format string, args ...any) *memory {
		if err := m.release(); err != nil {
			fmt.Fprintln(os.Stderr, "bench: releasing hugepages:", err)
		}
		m.noHuge, m.why, m.hugeDir, m.pages = true, fmt.Sprintf(format, args...), "", 0
		return m
	}
	if forceNoHuge {
		return fallback("asked for with -no-huge")
	}
	need := (memMB<<20)/hugepageSize + 16 // slack for DPDK's own zones
	free, err := meminfo("HugePages_Free")
	if err != nil {
		return fallback("reading /proc/meminfo: %v", err)
	}
	if free < need {
		total, err := readInt(nrHugepages)
		if err != nil {
			return fallback("reading %s: %v", nrHugepages, err)
		}
		if err := writeInt(nrHugepages, total+need-free); err != nil {
			return fallback("reserving hugepages: %v", err)
		}
		m.undo = append(m.undo, func() error {
			// Give back what this run added, not a remembered total:
			// another process may have changed the reservation since.
			now, err := readInt(nrHugepages)
			if err != nil {
				return err
			}
			return writeInt(nrHugepages, max(now-(need-free), total))
		})
		if got, _ := meminfo("HugePages_Free"); got < need {
			return fallback("the kernel found only %d of %d free 2 MiB pages", got, need)
		}
	}
	m.pages = need
	if dir := hugetlbfsMount(); dir != "" {
		m.hugeDir = dir
		return m
	}
	dir, err := os.MkdirTemp("", "poolrelay-huge-")
	if err != nil {
		return fallback("creating a hugetlbfs mount point: %v", err)
	}
	m.undo = append(m.undo, func() error { return os.Remove(dir) })
	if err := unix.Mount("nodev", dir, "hugetlbfs", 0, "pagesize=2M"); err != nil {
		return fallback("mounting hugetlbfs: %v", err)
	}
	m.undo = append(m.undo, func() error { return unix.Unmount(dir, 0) })
	m.hugeDir = dir
	return m
}

// hugetlbfsMount returns a mounted hugetlbfs with 2 MiB pages, or "".
func hugetlbfsMount() string {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 4 && fields[2] == "hugetlbfs" &&
			(strings.Contains(fields[3], "pagesize=2M") || !strings.Contains(fields[3], "pagesize=")) {
			return fields[1]
		}
	}
	return ""
}

func meminfo(key string) (int, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			return strconv.Atoi(strings.TrimSpace(rest))
		}
	}
	return 0, fmt.Errorf("no %s in /proc/meminfo", key)
}

func readInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func writeInt(path string, v int) error {
	return os.WriteFile(path, []byte(strconv.Itoa(v)+"\n"), 0o644)
}
