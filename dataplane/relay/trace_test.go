package relay

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/dataplane/wire"
)

// TestTrace captures frames a port receives, as `pool_relay trace` does: on
// a net_ring port a relayed frame goes round until its TTL runs out, so the
// port receives it ttl times, each time with a fresh seq. The trace takes
// the first frames unchanged (cut to the snap length), a second trace
// while one runs is refused, and a trace that sees too little ends with its
// context and returns what it got.
func TestTrace(t *testing.T) {
	e := loopEngine(t, "net_ring_trace", 6, key(0x66))
	if _, err := e.Trace(context.Background(), 3, 1, 128); !errors.Is(err, ErrNoPort) {
		t.Errorf("trace of a port that does not exist: %v", err)
	}
	if _, err := e.Trace(context.Background(), 0, 0, 128); !errors.Is(err, ErrTraceArgs) {
		t.Errorf("trace of 0 frames: %v", err)
	}

	const ttl, count, snap = 20, 5, 64
	frame := loopFrame(t, ttl, key(0x66))

	got := make(chan []TracedFrame, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		fs, err := e.Trace(ctx, 0, count, snap)
		if err != nil {
			t.Error(err)
		}
		got <- fs
	}()
	// Wait until the trace is armed, then check a second one is refused.
	for e.tables.trace.Load() == nil {
		time.Sleep(time.Millisecond)
	}
	if _, err := e.Trace(context.Background(), 0, 1, 128); !errors.Is(err, ErrTraceBusy) {
		t.Errorf("second trace: %v, want ErrTraceBusy", err)
	}
	if err := e.Inject(0, frame); err != nil {
		t.Fatal(err)
	}
	fs := <-got
	if len(fs) != count {
		t.Fatalf("traced %d frames, want %d", len(fs), count)
	}
	for i, f := range fs {
		if f.Len != len(frame) || len(f.Data) != snap {
			t.Errorf("frame %d: len %d, %d bytes kept; want %d, %d", i, f.Len, len(f.Data), len(frame), snap)
		}
		// Addresses and ports stay (the route sends it back the same way);
		// the first frame is the injected one, byte for byte.
		if i == 0 && !bytes.Equal(f.Data, frame[:snap]) {
			t.Errorf("first traced frame differs from the injected one")
		}
		if f.Time.IsZero() {
			t.Errorf("frame %d has no time", i)
		}
	}

	// Nothing more arrives: the trace ends with its context, empty.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	waitFor(t, "the TTL to run out", func() bool { return e.Counters().Drops(int(wire.DropTTLExpired)) == 1 })
	fs, err := e.Trace(ctx, 0, 10, 128)
	if err != nil || len(fs) != 0 {
		t.Errorf("idle trace: %d frames, %v", len(fs), err)
	}
}
