package control

import (
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/pool/transport"
)

// A relay that stops sends its peers an authenticated CLOSE on the way out,
// and they drop the session at once, whichever end enrolled: not after
// peer_timeout.
func TestStopSeenByPeerAtOnce(t *testing.T) {
	for _, initiatorStops := range []bool{true, false} {
		name := "responder stops"
		if initiatorStops {
			name = "initiator stops"
		}
		t.Run(name, func(t *testing.T) {
			w1, w2 := newWorld(t, nil), newWorld(t, nil)
			if _, err := w1.core.Enroll(ctx(t), transport.Endpoint{Addr: w2.relay.Addr()}, w2.relayA); err != nil {
				t.Fatal(err)
			}
			eventually(t, "both ends enrolled", func() bool {
				return w1.core.Counter(PeersEnrolled) == 1 && w2.core.Counter(PeersEnrolled) == 1
			})
			stopping, watcher := w1, w2
			if !initiatorStops {
				stopping, watcher = w2, w1
			}
			stopping.cancel()
			stopping.wg.Wait()
			start := time.Now()
			for {
				ps, err := watcher.core.Peers(ctx(t))
				if err != nil {
					t.Fatal(err)
				}
				if len(ps) == 0 {
					break
				}
				if time.Since(start) > time.Second {
					t.Fatalf("peer still enrolled 1 s after the other end stopped; counters %v", nonZero(watcher.core.Counters()))
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("seen after %v", time.Since(start))
		})
	}
}

func nonZero(m map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}
