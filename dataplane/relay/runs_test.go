package relay

import (
	"bytes"
	"testing"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane/wire"
)

// TestSessionRunsShareLookups decides one burst whose frames come in runs
// of one session (routed, unknown, disabled, over IPv6), where the worker
// looks a route up once per run, and the same frames one burst each, where
// every lookup is a run of its own: verdicts and the rewritten bytes must
// be the same frame by frame, with and without hop authentication.
func TestSessionRunsShareLookups(t *testing.T) {
	// Runs of one session that pass and that fail the route's checks
	// (without hop auth a run's frames after the first take its check).
	sessions := []wire.SessionID{sessV4, sessV4, sessUnknown, sessUnknown, sessV4, sessDisabled,
		sessV4, sessV6, sessV6, sessV4, sessChoked, sessChoked, sessV4, sessDisabled, sessDisabled,
		sessV4, sessV4, sessV4,
		// With hop auth, a run whose frames fail their own checks after
		// the first passed the route's: a replayed seq, then a forgery.
		sessV4, sessV4, sessV4, sessV4}
	const replayed, forged = 19, 20
	for _, auth := range []bool{false, true} {
		var rx *hopmac.Key
		if auth {
			rx = hopmac.New(rxKey)
		}
		build := func() [][]byte {
			fs := make([][]byte, len(sessions))
			for i, s := range sessions {
				seq := uint64(i + 1)
				if i == replayed {
					seq = replayed // the frame before's
				}
				fs[i] = signed(t, s == sessV6, s, seq, rx)
				if i == forged {
					fs[i][len(fs[i])-1] ^= 1
				}
			}
			return fs
		}
		burst, single := build(), build()
		f, g := newFixture(t, auth), newFixture(t, auth)
		vs := f.decide(0, burst...)
		for i := range single {
			v := g.decide(0, single[i])[0]
			if v != vs[i] {
				t.Errorf("auth %v, frame %d (session %x): verdict %+v in the burst, %+v alone", auth, i, sessions[i][:2], vs[i], v)
			}
			// The seq and MAC a signing worker writes are its own
			// sequence's: the two workers number the frames alike only
			// frame by frame in the same order, which they do.
			if !bytes.Equal(burst[i], single[i]) {
				t.Errorf("auth %v, frame %d: rewritten bytes differ between the burst and alone", auth, i)
			}
		}
		if auth && (vs[replayed].reason != reason8(ReasonReplay) || vs[forged].reason != reason8(ReasonBadMAC) || vs[forged+1].act != actRelay) {
			t.Errorf("a run's replayed, forged and next frames: verdicts %+v, %+v, %+v", vs[replayed], vs[forged], vs[forged+1])
		}
		if f.set.Peer(peerIn) != g.set.Peer(peerIn) {
			t.Errorf("auth %v: peer counters %+v in bursts, %+v alone", auth, f.set.Peer(peerIn), g.set.Peer(peerIn))
		}
	}
}
