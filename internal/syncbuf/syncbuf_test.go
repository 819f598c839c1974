package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

// TestConcurrentWrites writes from several goroutines at once (the race
// detector checks the locking) and expects every write, whole.
func TestConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("ab\n"))
			}
		})
	}
	wg.Wait()
	s := b.String()
	if strings.Count(s, "ab\n") != 800 || len(s) != 800*3 {
		t.Fatalf("got %d bytes, %d whole writes; want 800", len(s), strings.Count(s, "ab\n"))
	}
}
