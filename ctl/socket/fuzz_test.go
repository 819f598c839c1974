package socket

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
)

// FuzzReadLine: the framing never returns more than the limit, never a
// newline inside a line, and never panics.
func FuzzReadLine(f *testing.F) {
	f.Add([]byte("{\"v\":1}\n{\"v\":1}\n"), 8)
	f.Add(bytes.Repeat([]byte("x"), 100), 16)
	f.Add([]byte("\n\n\n"), 1)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max < 1 || max > 1<<12 {
			return
		}
		// A 16-byte buffer forces the ErrBufferFull path on long lines.
		r := bufio.NewReaderSize(bytes.NewReader(in), 16)
		for range len(in) + 1 {
			line, err := readLine(r, max)
			if len(line) > max || bytes.IndexByte(line, '\n') >= 0 {
				t.Fatalf("line %q for max %d", line, max)
			}
			if errors.Is(err, errTooLarge) && line != nil {
				t.Fatal("too large with data")
			}
			if err != nil {
				return
			}
		}
		t.Fatal("readLine made no progress")
	})
}
