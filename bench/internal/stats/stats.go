// Package stats holds the figures the benchmark programs under bench/ reduce
// their runs to, so that each reports "the median" meaning the same thing.
package stats

import "slices"

// Median returns the median of s: the middle value, or the mean of the two
// middle values for an even count; 0 for none. s is left as it was.
func Median(s []float64) float64 {
	if len(s) == 0 {
		return 0
	}
	s = slices.Sorted(slices.Values(s))
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}
