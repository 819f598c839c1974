package relay

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/poolrelay/poolrelay/dataplane/dpdk"
)

// Trace errors.
var (
	// ErrTraceBusy: another capture is running; one at a time.
	ErrTraceBusy = errors.New("relay: a trace is already running")
	// ErrTraceArgs: a count or snap length out of range.
	ErrTraceArgs = errors.New("relay: trace count must be 1 to 4096 and snap length 64 to 65535")
)

// TracedFrame is one frame a trace captured: the first Snap bytes of a
// frame received on the traced port, before the worker touched it.
type TracedFrame struct {
	Time time.Time
	// Len is the frame's length on the wire; Data holds at most the
	// trace's snap length of it.
	Len  int
	Data []byte
}

// trace is one running capture (pool_relay trace): workers copy the frames
// they receive on port into its preallocated slots until count are taken.
// A worker pays one atomic load per burst when no trace runs, and when one
// does, an atomic add and a copy per frame of the traced port: tracing is a
// debugging aid, not free, and bounded by count.
type trace struct {
	port   int
	snap   int
	frames []TracedFrame // len count, Data preallocated with cap snap
	ready  []atomic.Bool // slot i written
	next   atomic.Int64  // slots claimed
	filled atomic.Int64  // slots written
	done   chan struct{} // closed by the worker that fills the last slot
}

// capture copies frames of rx (received on port) into t's free slots.
func (t *trace) capture(port int, rx []*dpdk.Mbuf) {
	if port != t.port {
		return
	}
	for _, m := range rx {
		i := t.next.Add(1) - 1
		if i >= int64(len(t.frames)) {
			return
		}
		d := m.Data()
		f := &t.frames[i]
		f.Time = time.Now()
		f.Len = m.PktLen()
		f.Data = append(f.Data[:0], d[:min(len(d), t.snap)]...)
		t.ready[i].Store(true)
		if t.filled.Add(1) == int64(len(t.frames)) {
			close(t.done)
		}
	}
}

// Trace captures up to count frames received on port, each cut to snap
// bytes, and returns them once count were taken or when ctx ends (with
// what was taken by then). One trace runs at a time.
func (e *Engine) Trace(ctx context.Context, port, count, snap int) ([]TracedFrame, error) {
	if port < 0 || port >= len(e.ports) {
		return nil, ErrNoPort
	}
	if count < 1 || count > 4096 || snap < 64 || snap > 65535 {
		return nil, ErrTraceArgs
	}
	t := &trace{port: port, snap: snap, frames: make([]TracedFrame, count), ready: make([]atomic.Bool, count), done: make(chan struct{})}
	for i := range t.frames {
		t.frames[i].Data = make([]byte, 0, snap)
	}
	if !e.tables.trace.CompareAndSwap(nil, t) {
		return nil, ErrTraceBusy
	}
	select {
	case <-t.done:
	case <-ctx.Done():
	}
	e.tables.trace.Store(nil)
	// A worker that claimed a slot before the store may still be copying
	// into it: wait for each claimed slot to be written (a copy of at most
	// snap bytes), so the caller gets no frame half written. Slots claimed
	// after this read are beyond the returned slice.
	claimed := int(min(t.next.Load(), int64(count)))
	for i := 0; i < claimed; i++ {
		for !t.ready[i].Load() {
			time.Sleep(10 * time.Microsecond)
		}
	}
	return t.frames[:claimed], nil
}
