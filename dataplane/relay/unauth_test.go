package relay

import (
	"bytes"
	"testing"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/dataplane/wire/wiretest"
)

// An unauthenticated lab peer's slot (Tables.SetUnauthenticated): its
// frames are relayed without a MAC or replay check and charged to it; a
// frame towards an authenticated next hop is still signed (the MAC field's
// second half cleared); towards an unauthenticated one it leaves as it
// came. Only the slot so marked: the fixture's other slots still verify.
func TestUnauthenticatedSlot(t *testing.T) {
	f := newFixture(t, true)
	junk := signed(t, false, sessV4, 3, nil)
	var r wire.Result
	wire.Classify(junk, wiretest.Matcher(), &r)
	// No valid MAC, and its tail set; the UDP checksum kept valid.
	wire.PatchUDP(junk, &r, int(r.PoolOff)+hopmac.MACOffset, bytes.Repeat([]byte{0xee}, hopmac.MACSize))
	if !wire.UDPChecksumValid(junk, &r) {
		t.Fatal("test frame's checksum")
	}
	if v := f.decide(0, bytes.Clone(junk))[0]; Reason(v.reason) != ReasonBadMAC {
		t.Fatalf("before the slot is unauthenticated: %+v, want bad_mac", v)
	}
	if err := f.tables.SetUnauthenticated(keyIn); err != nil {
		t.Fatal(err)
	}
	if !f.tables.Unauthenticated(keyIn) || f.tables.Unauthenticated(keyOut) {
		t.Fatal("Unauthenticated reports the wrong slots")
	}
	before := f.set.Peer(peerIn).ForPackets
	for range 3 { // the same seq again and again: no replay window
		frame := bytes.Clone(junk)
		if v := f.decide(0, frame)[0]; v.act != actRelay {
			t.Fatalf("unauthenticated ingress: %+v", v)
		}
		var out wire.Result
		wire.Classify(frame, wiretest.Matcher(), &out)
		pool := frame[out.PoolOff : int(out.PayloadOff)+int(out.PayloadLen)]
		if !hopmac.New(txKey).Verify(pool) || !wire.UDPChecksumValid(frame, &out) {
			t.Fatal("towards an authenticated next hop: not signed, or the UDP checksum broken")
		}
	}
	if got := f.set.Peer(peerIn).ForPackets - before; got != 3 {
		t.Fatalf("charged %d frames to the unauthenticated peer, want 3", got)
	}
	// Both ends unauthenticated: the outer POOL header goes out untouched.
	if err := f.tables.SetUnauthenticated(keyOut); err != nil {
		t.Fatal(err)
	}
	frame := bytes.Clone(junk)
	if v := f.decide(0, frame)[0]; v.act != actRelay {
		t.Fatalf("both unauthenticated: %+v", v)
	}
	var out wire.Result
	wire.Classify(frame, wiretest.Matcher(), &out)
	if !bytes.Equal(frame[out.PoolOff:out.PayloadOff], junk[r.PoolOff:r.PayloadOff]) || !wire.UDPChecksumValid(frame, &out) {
		t.Fatal("towards an unauthenticated peer the header changed, or the checksum broke")
	}
	// Keys again end it.
	if err := f.tables.SetHopKeys(keyIn, rxKey, nil); err != nil {
		t.Fatal(err)
	}
	if v := f.decide(0, bytes.Clone(junk))[0]; Reason(v.reason) != ReasonBadMAC {
		t.Fatalf("after SetHopKeys: %+v, want bad_mac", v)
	}
}

// A key installed with SetHopKeysAt numbers its frames from there.
func TestSetHopKeysAt(t *testing.T) {
	f := newFixture(t, true)
	if err := f.tables.SetHopKeysAt(keyOut, nil, txKey, 1<<40); err != nil {
		t.Fatal(err)
	}
	frame := signed(t, false, sessV4, 1, hopmac.New(rxKey))
	if v := f.decide(0, frame)[0]; v.act != actRelay {
		t.Fatalf("%+v", v)
	}
	var r wire.Result
	wire.Classify(frame, wiretest.Matcher(), &r)
	if r.Seq != 1<<40 {
		t.Fatalf("egress seq %d, want %d", r.Seq, uint64(1<<40))
	}
}
