package relay

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/dataplane/wire/wiretest"
)

// TestFullEqualsPseudoAgreesWithWire checks the veth test's expectation
// helper against the codec: for frames built with a full UDP checksum,
// fullEqualsPseudo is true exactly where wire.UDPChecksumNotReady is, over
// enough payloads (two varied bytes) to meet both answers.
func TestFullEqualsPseudoAgreesWithWire(t *testing.T) {
	spec := wiretest.Spec(false)
	src := netip.AddrPortFrom(spec.SrcIP, spec.SrcPort)
	dst := netip.AddrPortFrom(spec.DstIP, spec.DstPort)
	payload := wiretest.Inner(make([]byte, 64))
	m := wiretest.Matcher()
	var r wire.Result
	equal := 0
	for v := range 1 << 17 {
		binary.BigEndian.PutUint32(payload[wire.HeaderLen:], uint32(v))
		spec.Payload = payload
		f := wiretest.Frame(t, &spec)
		wire.Classify(f, m, &r)
		udpPayload := f[int(r.L4Off)+wire.UDPLen : int(r.L4Off)+int(r.L4Len)]
		got, want := fullEqualsPseudo(src, dst, udpPayload), wire.UDPChecksumNotReady(f, &r)
		if got != want {
			t.Fatalf("payload %d: fullEqualsPseudo %v, wire.UDPChecksumNotReady %v", v, got, want)
		}
		if got {
			equal++
		}
	}
	if equal == 0 {
		t.Fatal("no payload met a full checksum equal to its pseudo-header sum: the check saw one answer only")
	}
	t.Logf("%d of %d full checksums equal their pseudo-header sum", equal, 1<<17)
}
