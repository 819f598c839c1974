//go:build race

package route

// raceEnabled lets the slowest tests do less under the race detector, which
// makes them ten to forty times slower and adds nothing to single-goroutine
// tests.
const raceEnabled = true
