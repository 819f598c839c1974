package route

import (
	"reflect"

	"golang.org/x/sys/unix"
)

// hugePage is the size of an x86-64 or arm64 (4 KiB granule) transparent
// huge page.
const hugePage = 2 << 20

// adviseHuge asks the kernel to back the 2 MiB pages that s covers whole
// with transparent huge pages, and returns how many bytes it advised.
//
// MADV_HUGEPAGE makes later page faults in the range map huge pages;
// MADV_COLLAPSE (Linux 6.1) then turns pages already faulted in, as they
// are when the Go runtime reuses memory, into huge pages now, which also
// faults in the rest: the chunk is prefaulted, on the control core, rather
// than on a worker's first lookup. Both are hints: on an older kernel, with
// huge pages disabled, or with memory too fragmented they fail, and the
// table works on small pages as before.
//
// The address comes from reflect, not unsafe (confined to the DPDK
// binding). madvise neither reads nor writes the memory, and the Go heap
// does not move objects; the caller keeps s.
func adviseHuge[T any](s []T) int {
	if len(s) == 0 {
		return 0
	}
	start := reflect.ValueOf(s).Pointer()
	end := start + uintptr(len(s))*reflect.TypeFor[T]().Size()
	lo, hi := (start+hugePage-1)&^(hugePage-1), end&^(hugePage-1)
	if hi <= lo {
		return 0
	}
	if _, _, e := unix.Syscall(unix.SYS_MADVISE, lo, hi-lo, unix.MADV_HUGEPAGE); e != 0 {
		return 0
	}
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, lo, hi-lo, unix.MADV_COLLAPSE)
	return int(hi - lo)
}
