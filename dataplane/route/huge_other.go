//go:build !linux

package route

// adviseHuge does nothing off Linux, where the table's memory stays on
// whatever pages the Go runtime gets; see the Linux version.
func adviseHuge[T any](s []T) int { return 0 }
