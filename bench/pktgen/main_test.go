package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/internal/traffic"
)

var captures = []string{"pool_data_128.pcap", "pool_data_512.pcap", "pool_data_1500.pcap", "pool_control.pcap"}

// TestCapturesUpToDate regenerates the captures and compares them with the
// committed ones byte for byte: the generator is deterministic, so a
// difference means `go generate ./bench/pktgen` was not run after a change.
func TestCapturesUpToDate(t *testing.T) {
	dir := t.TempDir()
	if err := writeAll(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range captures {
		fresh, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(name)
		if err != nil {
			t.Fatalf("%v: run go generate ./bench/pktgen", err)
		}
		if !bytes.Equal(fresh, committed) {
			t.Errorf("%s differs from a fresh run: run go generate ./bench/pktgen", name)
		}
	}
}

// readPcap decodes a classic little-endian microsecond pcap file,
// independently of writePcap, and returns its frames.
func readPcap(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if len(b) < 24 || le.Uint32(b) != 0xa1b2c3d4 || le.Uint32(b[20:]) != uint32(layers.LinkTypeEthernet) {
		t.Fatalf("%s: not a little-endian Ethernet pcap", path)
	}
	var frames [][]byte
	for off := 24; off < len(b); {
		if off+16 > len(b) {
			t.Fatalf("%s: truncated record header at %d", path, off)
		}
		incl, orig := int(le.Uint32(b[off+8:])), int(le.Uint32(b[off+12:]))
		if incl != orig || off+16+incl > len(b) {
			t.Fatalf("%s: bad record at %d", path, off)
		}
		frames = append(frames, b[off+16:off+16+incl])
		off += 16 + incl
	}
	return frames
}

// TestDataCaptures checks each DATA capture with gopacket and the hop MAC
// verifier: the right size, addresses and port, every session once, seq 1,
// and a MAC that verifies under TestKeyHex.
func TestDataCaptures(t *testing.T) {
	key, _ := hex.DecodeString(TestKeyHex)
	verify := hopmac.New(key)
	for _, size := range DataSizes {
		frames := readPcap(t, "pool_data_"+strconv.Itoa(size)+".pcap")
		if len(frames) != Sessions {
			t.Fatalf("%d B: %d frames, want %d", size, len(frames), Sessions)
		}
		seen := make([]bool, Sessions)
		for _, f := range frames {
			p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
			eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
			if len(f) != size || eth == nil || ip == nil || udp == nil || p.ErrorLayer() != nil {
				t.Fatalf("%d B: frame of %d bytes does not decode: %v", size, len(f), p)
			}
			if !bytes.Equal(eth.DstMAC, RelayMAC[:]) || !ip.DstIP.Equal(RelayIP.AsSlice()) || udp.DstPort != wire.RelayPort {
				t.Fatalf("%d B: addressed to %v %v :%d", size, eth.DstMAC, ip.DstIP, udp.DstPort)
			}
			pool := udp.Payload
			h := wire.Header(pool[:wire.HeaderLen])
			i, ok := traffic.SessionIndex(h.Session())
			if !ok || i >= Sessions || seen[i] || h.Type() != wire.TypeData || h.Channel() != 0 || h.Seq() != uint64(i)+1 {
				t.Fatalf("%d B: session %v (index %d, seen %v) type %v channel %d seq %d", size, h.Session(), i, ok && seen[i], h.Type(), h.Channel(), h.Seq())
			}
			seen[i] = true
			if !verify.Verify(pool) {
				t.Fatalf("%d B: session %d: hop MAC does not verify under the test key", size, i)
			}
			// gopacket checks the UDP checksum against the pseudo-header.
			udp.SetNetworkLayerForChecksum(ip)
			sb := gopacket.NewSerializeBuffer()
			if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{ComputeChecksums: true}, udp, gopacket.Payload(udp.Payload)); err != nil {
				t.Fatal(err)
			}
			if got := binary.BigEndian.Uint16(sb.Bytes()[6:]); got != udp.Checksum {
				t.Fatalf("%d B: UDP checksum %#04x, want %#04x", size, udp.Checksum, got)
			}
		}
	}
}

// TestControlCapture checks that the control capture holds, per session,
// one frame of every non-DATA type on channel 0, one DATA frame on channel
// 2, and one ARP request for the relay.
func TestControlCapture(t *testing.T) {
	frames := readPcap(t, "pool_control.pcap")
	m := wire.NewMatcher(wire.RelayPort)
	var r wire.Result
	perType := map[wire.Type]int{}
	arp, dataCh2 := 0, 0
	for _, f := range frames {
		wire.Classify(f, m, &r)
		switch {
		case r.Kind == wire.KindARP && r.Drop == wire.DropNone:
			arp++
		case r.Kind == wire.KindPoolUDP4 && r.Drop == wire.DropNone && r.Type == wire.TypeData:
			if r.Channel != 2 {
				t.Fatalf("DATA on channel %d in the control capture", r.Channel)
			}
			dataCh2++
		case r.Kind == wire.KindPoolUDP4 && r.Drop == wire.DropNone && r.Channel == 0:
			perType[r.Type]++
		default:
			t.Fatalf("unexpected frame: kind %v drop %v type %v channel %d", r.Kind, r.Drop, r.Type, r.Channel)
		}
	}
	const sessions = 64
	if arp != sessions || dataCh2 != sessions || len(perType) != wire.NumTypes-1 {
		t.Fatalf("%d ARP, %d channel-2 DATA, %d other types", arp, dataCh2, len(perType))
	}
	for typ, n := range perType {
		if n != sessions {
			t.Fatalf("type %v: %d frames, want %d", typ, n, sessions)
		}
	}
}
