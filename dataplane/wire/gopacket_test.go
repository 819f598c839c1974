package wire_test

// A differential test against gopacket's layers: frames built with gopacket
// (valid ones, and the same mutated) are decoded by both, and every field
// both expose must agree.

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/poolrelay/poolrelay/dataplane/wire"
)

func TestGopacketDifferential(t *testing.T) {
	n := 30000
	if testing.Short() {
		n = 3000
	}
	rng := rand.New(rand.NewPCG(0x9001, 0x253))
	var kinds [wire.NumKinds]int
	var drops [wire.NumDropReasons]int
	for i := 0; i < n; i++ {
		frame := gopacketFrame(t, rng)
		if i%2 == 1 {
			frame = mutate(rng, frame)
		}
		r := compareWithGopacket(t, frame)
		if t.Failed() {
			t.Fatalf("frame %d: % x", i, frame)
		}
		kinds[r.Kind]++
		drops[r.Drop]++
	}
	// The generator must reach every kind accepted, and the mutations a
	// good share of the drop reasons, or the agreement means little.
	for k := wire.KindOther; k < wire.NumKinds; k++ {
		if kinds[k] < n/100 {
			t.Errorf("only %d frames of kind %v", kinds[k], k)
		}
	}
	reached := 0
	for d, c := range drops {
		if c > 0 {
			reached++
		}
		t.Logf("%-36s %6d", wire.DropReason(d), c)
	}
	if reached < 15 {
		t.Errorf("mutations reached only %d drop reasons", reached)
	}
}

// FuzzGopacket runs the same comparison on arbitrary bytes.
func FuzzGopacket(f *testing.F) {
	seedFrames(f)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 50; i++ {
		f.Add(gopacketFrame(f, rng))
	}
	f.Fuzz(func(t *testing.T, frame []byte) { compareWithGopacket(t, frame) })
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func pick[T any](rng *rand.Rand, v ...T) T { return v[rng.IntN(len(v))] }

// gopacketFrame builds a random frame with gopacket: POOL over UDP or IP
// over IPv4 (with options) or IPv6 (with extension headers), ARP, or
// neighbour discovery, with zero to two VLAN tags.
func gopacketFrame(tb testing.TB, rng *rand.Rand) []byte {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(randBytes(rng, 6)), DstMAC: net.HardwareAddr(randBytes(rng, 6))}
	ls := []gopacket.SerializableLayer{eth}
	setType := func(t layers.EthernetType) { eth.EthernetType = t }
	ntags := rng.IntN(3)
	if rng.IntN(30) == 0 {
		ntags = 3
	}
	for i := ntags; i > 0; i-- {
		tpid := pick(rng, layers.EthernetTypeDot1Q, layers.EthernetTypeQinQ)
		setType(tpid)
		tag := &layers.Dot1Q{Priority: uint8(rng.IntN(8)), DropEligible: rng.IntN(2) == 0, VLANIdentifier: uint16(rng.IntN(4096))}
		ls = append(ls, tag)
		setType = func(t layers.EthernetType) { tag.Type = t }
	}

	poolFrame := func() []byte {
		payload := randBytes(rng, pick(rng, 0, 1, 64, rng.IntN(1400)))
		h := make([]byte, 80, 80+len(payload))
		h[0] = 1<<4 | byte(rng.IntN(12))
		binary.BigEndian.PutUint16(h[2:], uint16(rng.IntN(1<<10)))
		copy(h[4:44], randBytes(rng, 40))
		binary.BigEndian.PutUint16(h[44:], uint16(len(payload)))
		h[46] = pick(rng, 0, 2, byte(rng.Uint32()))
		copy(h[48:], randBytes(rng, 32))
		switch rng.IntN(40) { // now and then, a header a relay must refuse
		case 0:
			h[0] = byte(rng.IntN(16))<<4 | h[0]&15
		case 1:
			h[0] = h[0]&0xf0 | byte(12+rng.IntN(4))
		case 2:
			h[pick(rng, 1, 2, 47)] |= byte(1 << rng.IntN(8))
		case 3:
			binary.BigEndian.PutUint16(h[44:], uint16(rng.Uint32()))
		}
		return append(h, payload...)
	}
	port := func() layers.UDPPort {
		return layers.UDPPort(pick(rng, wire.PoolPort, wire.RelayPort, extraPort, rng.IntN(65536)))
	}

	switch kind := rng.IntN(6); kind {
	case 0, 1: // IPv4
		setType(layers.EthernetTypeIPv4)
		ip := &layers.IPv4{
			Version: 4, TOS: uint8(rng.Uint32()), Id: uint16(rng.Uint32()), TTL: uint8(rng.Uint32()),
			SrcIP: net.IP(randBytes(rng, 4)), DstIP: net.IP(randBytes(rng, 4)),
			Flags: pick(rng, layers.IPv4Flag(0), layers.IPv4DontFragment),
		}
		if rng.IntN(15) == 0 {
			ip.Flags |= layers.IPv4MoreFragments
		}
		if rng.IntN(15) == 0 {
			ip.FragOffset = uint16(rng.IntN(1 << 13))
		}
		switch rng.IntN(4) {
		case 0:
			ip.Options = []layers.IPv4Option{{OptionType: 0x94, OptionLength: 4, OptionData: []byte{0, 0}}}
		case 1:
			ip.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}
		}
		ls = append(ls, ip)
		if kind == 0 {
			ip.Protocol = layers.IPProtocolUDP
			udp := &layers.UDP{SrcPort: port(), DstPort: port()}
			if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
				tb.Fatal(err)
			}
			ls = append(ls, udp)
		} else {
			ip.Protocol = wire.ProtoPOOL
		}
		ls = append(ls, gopacket.Payload(poolFrame()))
	case 2, 3, 4: // IPv6
		setType(layers.EthernetTypeIPv6)
		ip := &layers.IPv6{
			Version: 6, TrafficClass: uint8(rng.Uint32()), FlowLabel: rng.Uint32() & 0xfffff, HopLimit: uint8(rng.Uint32()),
			SrcIP: net.IP(randBytes(rng, 16)), DstIP: net.IP(randBytes(rng, 16)),
		}
		ls = append(ls, ip)
		next := func(p layers.IPProtocol) { ip.NextHeader = p }
		// Extension headers, raw: hop-by-hop first, then a mix.
		var chain []byte
		var types []layers.IPProtocol
		if kind != 4 && rng.IntN(3) == 0 {
			types = append(types, layers.IPProtocolIPv6HopByHop)
		}
		for i := rng.IntN(3); i > 0 && kind != 4; i-- {
			types = append(types, pick(rng, layers.IPProtocolIPv6Destination, layers.IPProtocolIPv6Routing,
				layers.IPProtocolIPv6Destination, layers.IPProtocolIPv6Routing, layers.IPProtocolIPv6Fragment))
		}
		var upper layers.IPProtocol
		switch kind {
		case 2:
			upper = layers.IPProtocolUDP
		case 3:
			upper = wire.ProtoPOOL
		default:
			upper = layers.IPProtocolICMPv6
		}
		for i, typ := range types {
			var h []byte
			switch typ {
			case layers.IPProtocolIPv6Routing: // type 0, one address, none left
				h = make([]byte, 24)
				h[1] = 2
			case layers.IPProtocolIPv6Fragment:
				h = make([]byte, 8)
				binary.BigEndian.PutUint32(h[4:], rng.Uint32())
			default: // a PadN option filling the header
				h = []byte{0, 0, 1, 4, 0, 0, 0, 0}
			}
			if i+1 < len(types) {
				h[0] = byte(types[i+1])
			} else {
				h[0] = byte(upper)
			}
			if i == 0 {
				next(typ)
			}
			chain = append(chain, h...)
		}
		if len(types) == 0 {
			next(upper)
		}
		if len(chain) > 0 {
			ls = append(ls, gopacket.Payload(chain))
		}
		switch kind {
		case 2:
			udp := &layers.UDP{SrcPort: port(), DstPort: port()}
			if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
				tb.Fatal(err)
			}
			ls = append(ls, udp, gopacket.Payload(poolFrame()))
		case 3:
			ls = append(ls, gopacket.Payload(poolFrame()))
		default:
			ip.HopLimit = pick(rng, 255, 255, 255, uint8(rng.Uint32()))
			target := net.IP(randBytes(rng, 16))
			target[0] &= 0xfe
			icmp := &layers.ICMPv6{}
			if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
				tb.Fatal(err)
			}
			opt := layers.ICMPv6Option{Data: randBytes(rng, 6)}
			if rng.IntN(2) == 0 {
				icmp.TypeCode = layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)
				opt.Type = layers.ICMPv6OptSourceAddress
				ls = append(ls, icmp, &layers.ICMPv6NeighborSolicitation{TargetAddress: target, Options: []layers.ICMPv6Option{opt}})
			} else {
				icmp.TypeCode = layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0)
				opt.Type = layers.ICMPv6OptTargetAddress
				ls = append(ls, icmp, &layers.ICMPv6NeighborAdvertisement{
					Flags: pick(rng, uint8(0x60), 0x20, 0xe0), TargetAddress: target, Options: []layers.ICMPv6Option{opt},
				})
			}
		}
	default: // ARP
		setType(layers.EthernetTypeARP)
		ls = append(ls, &layers.ARP{
			AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation:       uint16(pick(rng, 1, 2)),
			SourceHwAddress: randBytes(rng, 6), SourceProtAddress: randBytes(rng, 4),
			DstHwAddress: randBytes(rng, 6), DstProtAddress: randBytes(rng, 4),
		})
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		tb.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

// mutate damages a frame the way a bad link or a hostile sender would:
// flipped bytes (mostly among the headers), truncation, or padding.
func mutate(rng *rand.Rand, frame []byte) []byte {
	switch rng.IntN(4) {
	case 0, 1:
		for i := rng.IntN(3) + 1; i > 0 && len(frame) > 0; i-- {
			at := rng.IntN(min(len(frame), 160))
			frame[at] ^= byte(rng.IntN(255) + 1)
		}
	case 2:
		frame = frame[:rng.IntN(len(frame)+1)]
	default:
		frame = append(frame, randBytes(rng, rng.IntN(64)+1)...)
	}
	return frame
}

// compareWithGopacket decodes frame with both decoders and fails t where
// they disagree on a field both expose. It returns the codec's result.
func compareWithGopacket(t *testing.T, frame []byte) wire.Result {
	t.Helper()
	r := classify(frame)
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{NoCopy: true})
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("disagreement: "+format+"\n codec: %+v\n gopacket:\n%s", append(args, r, pkt.Dump())...)
	}
	if len(frame) < wire.EthernetLen {
		if r.Drop != wire.DropTruncated || pkt.Layer(layers.LayerTypeEthernet) != nil {
			fail("a %d-byte frame", len(frame))
		}
		return r
	}

	// Ethernet and VLAN tags.
	eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	e := wire.Ethernet(frame)
	if eth == nil || !bytes.Equal(eth.DstMAC, mac(e.Dst())) || !bytes.Equal(eth.SrcMAC, mac(e.Src())) ||
		e.EtherType() >= 0x0600 && uint16(eth.EthernetType) != e.EtherType() {
		fail("Ethernet header")
		return r
	}
	var tags []*layers.Dot1Q
	for _, l := range pkt.Layers() {
		if d, ok := l.(*layers.Dot1Q); ok {
			tags = append(tags, d)
		}
	}
	for i := 0; i < int(r.VLANs) && i < len(tags); i++ {
		d := tags[i]
		tci := r.TCI[i]
		if d.VLANIdentifier != r.VLANID(i) || d.Priority != uint8(tci>>13) || d.DropEligible != (tci&0x1000 != 0) {
			fail("VLAN tag %d", i)
		}
	}
	if r.L3Off != 0 { // the tags were all read
		inner := uint16(eth.EthernetType)
		if len(tags) > 0 {
			inner = uint16(tags[len(tags)-1].Type)
		}
		if len(tags) != int(r.VLANs) || e.EtherType() >= 0x0600 && inner != r.EtherType {
			fail("%d tags, inner type %#04x", len(tags), inner)
		}
	}
	if r.Drop == wire.DropTooManyVLANs && len(tags) < wire.MaxVLANTags {
		fail("too many tags, but gopacket found %d", len(tags))
	}

	switch {
	case r.EtherType == wire.EtherTypeIPv4 && r.L3Off != 0:
		compareIPv4(t, frame, &r, pkt, fail)
	case r.EtherType == wire.EtherTypeIPv6 && r.L3Off != 0:
		compareIPv6(t, frame, &r, pkt, fail)
	case r.Kind == wire.KindARP && r.Drop == wire.DropNone:
		a := wire.ARP(frame[r.L3Off:])
		ga, _ := pkt.Layer(layers.LayerTypeARP).(*layers.ARP)
		if ga == nil || uint16(ga.AddrType) != a.HardwareType() || uint16(ga.Protocol) != a.ProtocolType() ||
			ga.HwAddressSize != a.HardwareLen() || ga.ProtAddressSize != a.ProtocolLen() || ga.Operation != a.Op() ||
			!bytes.Equal(ga.SourceHwAddress, mac(a.SenderMAC())) || !bytes.Equal(ga.DstHwAddress, mac(a.TargetMAC())) ||
			[4]byte(ga.SourceProtAddress) != a.SenderIP() || [4]byte(ga.DstProtAddress) != a.TargetIP() {
			fail("ARP")
		}
	}
	return r
}

func compareIPv4(t *testing.T, frame []byte, r *wire.Result, pkt gopacket.Packet, fail func(string, ...any)) {
	t.Helper()
	ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if r.Drop == wire.DropTruncated && r.L3Len == 0 && len(frame)-int(r.L3Off) >= wire.IPv4MinLen && !pkt.Metadata().Truncated && pkt.ErrorLayer() == nil {
		fail("truncated IPv4 datagram")
	}
	if r.L3Len == 0 { // the header did not pass the length checks
		return
	}
	h := wire.IPv4(frame[r.L3Off:])
	if ip == nil || ip.Version != 4 || int(ip.IHL)*4 != int(r.L4Off-r.L3Off) || uint32(ip.Length) != r.L3Len || ip.TTL != r.TTL ||
		uint8(ip.Protocol) != r.Proto || ip.TOS != h.TOS() || ip.Id != h.ID() || ip.Checksum != h.Checksum() ||
		[4]byte(ip.SrcIP.To4()) != h.Src() || [4]byte(ip.DstIP.To4()) != h.Dst() ||
		ip.FragOffset != h.FragmentOffset() || (ip.Flags&layers.IPv4MoreFragments != 0) != h.MoreFragments() ||
		(ip.Flags&layers.IPv4DontFragment != 0) != h.DontFragment() {
		fail("IPv4 header")
		return
	}
	// Checksum validity: gopacket's own computation, by serialising the
	// decoded header again. Only where that reproduces the header: options
	// gopacket cannot parse come out differently.
	cp := *ip
	buf := gopacket.NewSerializeBuffer()
	if err := cp.SerializeTo(buf, gopacket.SerializeOptions{ComputeChecksums: true}); err == nil {
		out, orig := buf.Bytes(), bytes.Clone(frame[r.L3Off:r.L4Off])
		if len(out) == len(orig) {
			copy(out[10:12], orig[10:12])
			if bytes.Equal(out, orig) {
				// Zero has two forms in ones' complement: a sender may
				// write 0xffff where gopacket computes 0 (RFC 1624, sec. 3).
				ok := cp.Checksum == ip.Checksum || cp.Checksum == 0 && ip.Checksum == 0xffff
				if ok != (r.Drop != wire.DropBadIPv4Checksum) {
					fail("IPv4 checksum validity: gopacket computes %#04x", cp.Checksum)
				}
			}
		}
	}
	if r.Drop == wire.DropBadIPv4Checksum {
		return
	}
	if frag := ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0; frag != (r.Drop == wire.DropFragment) {
		fail("fragment")
	}
	if r.Drop == wire.DropFragment {
		return
	}
	if r.Proto == wire.ProtoPOOL && r.Drop == wire.DropNone && !bytes.Equal(ip.Payload, frame[r.PoolOff:int(r.PayloadOff)+int(r.PayloadLen)]) {
		fail("IPv4 payload")
	}
	compareUDP(t, frame, r, pkt, ip, fail)
}

func compareIPv6(t *testing.T, frame []byte, r *wire.Result, pkt gopacket.Packet, fail func(string, ...any)) {
	t.Helper()
	ip, _ := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	if r.Drop == wire.DropTruncated && r.L3Len == 0 && len(frame)-int(r.L3Off) >= wire.IPv6Len && !pkt.Metadata().Truncated && pkt.ErrorLayer() == nil {
		fail("truncated IPv6 datagram")
	}
	if r.L3Len == 0 {
		return
	}
	h := wire.IPv6(frame[r.L3Off:])
	if ip == nil || ip.Version != 6 || ip.TrafficClass != h.TrafficClass() || ip.FlowLabel != h.FlowLabel() ||
		int(ip.Length) != int(r.L3Len)-wire.IPv6Len || ip.HopLimit != r.TTL || uint8(ip.NextHeader) != h.NextHeader() ||
		[16]byte(ip.SrcIP) != h.Src() || [16]byte(ip.DstIP) != h.Dst() {
		fail("IPv6 header")
		return
	}
	if r.Drop == wire.DropIPv6Extension || r.Drop == wire.DropTruncated {
		return
	}
	// The extension headers gopacket walked past, and where it got to.
	walked, last, payload := 0, ip.NextHeader, ip.Payload
	frag := false
	// The extension layers right after the (first) IPv6 layer: an
	// encapsulated datagram has its own further down.
	ls := pkt.Layers()
	for len(ls) > 0 && ls[0] != gopacket.Layer(ip) {
		ls = ls[1:]
	}
walk:
	for _, l := range ls[1:] {
		switch x := l.(type) {
		case *layers.IPv6HopByHop:
			walked, last = walked+len(x.Contents), x.NextHeader
		case *layers.IPv6Destination:
			walked, last, payload = walked+len(x.Contents), x.NextHeader, x.Payload
		case *layers.IPv6Routing:
			walked, last, payload = walked+len(x.Contents), x.NextHeader, x.Payload
		case *layers.IPv6Fragment:
			frag = true
		default:
			break walk
		}
	}
	// With a hop-by-hop header, gopacket 1.1.19 trims the payload to the
	// IPv6 payload length without taking that header off the length, so
	// Ethernet padding shows up as payload in every layer after it. Trim.
	if n := int(ip.Length) - walked; n >= 0 && n < len(payload) {
		payload = payload[:n]
	}
	ours := int(r.L4Off) - int(r.L3Off) - wire.IPv6Len
	if walked != ours {
		// gopacket stopped early; that must be because it failed.
		if walked > ours || pkt.ErrorLayer() == nil {
			fail("extension headers: gopacket walked %d bytes, the codec %d", walked, ours)
		}
		return
	}
	// A fragment header gopacket found is one the codec must report; one
	// the codec reports but gopacket did not decode, gopacket failed on.
	if uint8(last) != r.Proto || frag && r.Drop != wire.DropFragment || r.Drop == wire.DropFragment && !frag && pkt.ErrorLayer() == nil {
		fail("upper layer: gopacket %v (fragment %v)", last, frag)
		return
	}
	if r.Kind == wire.KindPoolIP6 && r.Drop == wire.DropNone && !bytes.Equal(payload, frame[r.PoolOff:int(r.PayloadOff)+int(r.PayloadLen)]) {
		fail("IPv6 payload")
	}
	if r.Kind == wire.KindND && r.L4Len >= wire.NDLen {
		compareND(t, frame, r, pkt, ip, fail)
	}
	compareUDP(t, frame, r, pkt, ip, fail)
}

func compareUDP(t *testing.T, frame []byte, r *wire.Result, pkt gopacket.Packet, nl gopacket.NetworkLayer, fail func(string, ...any)) {
	t.Helper()
	if !r.Kind.IsUDP() {
		return
	}
	udp, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if udp == nil {
		if pkt.ErrorLayer() == nil {
			fail("no UDP layer and no error")
		}
		return
	}
	u := wire.UDP(frame[r.L4Off:])
	if uint16(udp.SrcPort) != u.SrcPort() || uint16(udp.DstPort) != u.DstPort() || udp.Length != u.Length() || udp.Checksum != u.Checksum() {
		fail("UDP header")
		return
	}
	if r.Drop != wire.DropNone {
		return
	}
	if !bytes.Equal(udp.Payload, frame[r.PoolOff:int(r.PayloadOff)+int(r.PayloadLen)]) {
		fail("UDP payload")
	}
	cp := *udp
	if err := cp.SetNetworkLayerForChecksum(nl); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, &cp, gopacket.Payload(udp.Payload)); err != nil {
		t.Fatal(err)
	}
	ok := cp.Checksum == udp.Checksum || cp.Checksum == 0 && udp.Checksum == 0xffff
	if r.Kind == wire.KindPoolUDP4 && udp.Checksum == 0 {
		ok = true // not in use
	}
	if ok != wire.UDPChecksumValid(frame, r) {
		fail("UDP checksum validity: gopacket computes %#04x", cp.Checksum)
	}
}

func compareND(t *testing.T, frame []byte, r *wire.Result, pkt gopacket.Packet, ip *layers.IPv6, fail func(string, ...any)) {
	t.Helper()
	m := wire.ND(frame[r.L4Off : int(r.L4Off)+int(r.L4Len)])
	icmp, _ := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	if icmp == nil || icmp.TypeCode.Type() != m.Type() || icmp.TypeCode.Code() != m.Code() || icmp.Checksum != m.Checksum() {
		fail("ICMPv6 header")
		return
	}
	cp := *icmp
	if err := cp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, &cp, gopacket.Payload(icmp.Payload)); err != nil {
		t.Fatal(err)
	}
	gpOK := cp.Checksum == icmp.Checksum || cp.Checksum == 0 && icmp.Checksum == 0xffff
	ourOK := wire.Checksum(m, wire.PseudoHeaderSum(ip.SrcIP, ip.DstIP, wire.ProtoICMPv6, len(m))) == 0
	if gpOK != ourOK {
		fail("ICMPv6 checksum validity: gopacket computes %#04x", cp.Checksum)
	}
	if !gpOK && r.Drop != wire.DropBadND {
		fail("bad ICMPv6 checksum accepted")
	}
	if pkt.ErrorLayer() != nil {
		return // the message or its options did not decode: nothing more to compare
	}
	var target net.IP
	var opts layers.ICMPv6Options
	var flags uint8
	switch x := pkt.Layer(layers.LayerTypeICMPv6NeighborSolicitation).(type) {
	case *layers.ICMPv6NeighborSolicitation:
		target, opts = x.TargetAddress, x.Options
	default:
		na, _ := pkt.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
		if na == nil {
			fail("no solicitation or advertisement layer")
			return
		}
		target, opts, flags = na.TargetAddress, na.Options, na.Flags
	}
	if [16]byte(target) != m.Target() || m.Type() == wire.ICMPv6NeighborAdvert && flags != m.Flags() {
		fail("ND target or flags")
	}
	want := layers.ICMPv6OptSourceAddress
	if m.Type() == wire.ICMPv6NeighborAdvert {
		want = layers.ICMPv6OptTargetAddress
	}
	var gll []byte
	for _, o := range opts {
		if o.Type == want && len(o.Data) == 6 {
			gll = o.Data
			break
		}
	}
	ll, ok := m.LinkAddr()
	if ok != (gll != nil) || ok && !bytes.Equal(mac(ll), gll) {
		fail("link-layer address option")
	}
}
