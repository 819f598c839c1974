// Command pktgen writes the POOL traffic captures that Pktgen-DPDK replays
// against pool_relay (see README.md and pool.lua in this directory):
//
//	pool_data_128.pcap, pool_data_512.pcap, pool_data_1500.pcap
//	    relayed DATA frames of 128, 512 and 1500 bytes (Ethernet, FCS
//	    excluded), one for each of 1024 hop sessions (seq 1 to 1024), with
//	    valid hop MACs under TestKey
//	pool_control.pcap
//	    frames a relay punts to its control core or answers itself: every
//	    non-DATA POOL type, relay-control DATA on channel 2, and ARP
//	    requests for the relay's address
//
// The frames come from package internal/traffic, the same builder the
// project's own generator sends, with the addresses below. Output is
// deterministic (fixed timestamps, no randomness), so the committed files
// are checked against a fresh run by the package's test. Regenerate with
//
//	go generate ./bench/pktgen
//
// The captures are classic pcap (microsecond timestamps, Ethernet),
// written by internal/pcapfile rather than gopacket's pcapgo, which would
// add golang.org/x/net to the module.
package main

//go:generate go run . -out .

import (
	"encoding/hex"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/internal/pcapfile"
	"github.com/poolrelay/poolrelay/internal/traffic"
)

// TestKeyHex is the hop key the DATA captures are MACed under: the bytes 0
// to 31. It is a published test key; never configure it on a relay that
// carries real traffic.
const TestKeyHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

// The captures' addresses: the sending peer and the relay's port, from
// RFC 5737's documentation range and locally administered MACs. The relay
// under test must own RelayIP on the port Pktgen sends to (and run in
// promiscuous mode, or carry RelayMAC on that port).
var (
	PeerMAC  = wire.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	RelayMAC = wire.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}
	PeerIP   = netip.MustParseAddr("192.0.2.1")
	RelayIP  = netip.MustParseAddr("192.0.2.2")
)

const (
	// Sessions is the number of hop sessions in each DATA capture.
	Sessions = 1024
	// PeerPort is the UDP source port of every frame.
	PeerPort = 40000
)

// DataSizes are the frame sizes of the DATA captures.
var DataSizes = []int{128, 512, 1500}

// epoch is the first frame's timestamp; frames are 1 µs apart.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func main() {
	out := flag.String("out", ".", "directory to write the captures to")
	flag.Parse()
	if err := writeAll(*out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// writeAll writes every capture into dir.
func writeAll(dir string) error {
	for _, size := range DataSizes {
		frames, err := DataFrames(size)
		if err != nil {
			return err
		}
		if err := pcapfile.WriteFile(filepath.Join(dir, fmt.Sprintf("pool_data_%d.pcap", size)), frames, epoch, time.Microsecond); err != nil {
			return err
		}
	}
	frames, err := ControlFrames()
	if err != nil {
		return err
	}
	return pcapfile.WriteFile(filepath.Join(dir, "pool_control.pcap"), frames, epoch, time.Microsecond)
}

// DataFrames returns the frames of the DATA capture of size: session i's
// first frame, for i from 0 to Sessions-1, with seq i+1 (the hop key's
// seq runs across sessions: a GMAC nonce never repeats under a key).
func DataFrames(size int) ([][]byte, error) {
	key, _ := hex.DecodeString(TestKeyHex)
	b, err := traffic.NewBuilder(traffic.Spec{
		Size: size, Sessions: Sessions,
		Dst: RelayMAC, Src: PeerMAC, SrcIP: PeerIP, DstIP: RelayIP,
		SrcPort: PeerPort, DstPort: wire.RelayPort, Key: key,
	})
	if err != nil {
		return nil, fmt.Errorf("pktgen: %w", err)
	}
	frames := make([][]byte, Sessions)
	for i := range frames {
		buf := make([]byte, size)
		if _, err := b.Frame(buf, i); err != nil {
			return nil, fmt.Errorf("pktgen: %w", err)
		}
		frames[i] = buf
	}
	return frames, nil
}

// ControlFrames returns the frames of the control capture: for each of 64
// hop sessions, one frame of every POOL type but DATA (on channel 0), a
// DATA frame on channel 2 (relay control), and an ARP request for RelayIP.
// Control frames carry no hop MAC: the control core authenticates them
// itself, so the data plane punts them unverified.
func ControlFrames() ([][]byte, error) {
	const sessions = 64
	payload := make([]byte, 64)
	for i := range payload {
		payload[i] = byte(i)
	}
	var frames [][]byte
	for s := 0; s < sessions; s++ {
		for t := wire.Type(0); t < wire.NumTypes; t++ {
			ch := uint8(0)
			if t == wire.TypeData {
				ch = 2
			}
			spec := wire.FrameSpec{
				Dst: RelayMAC, Src: PeerMAC, SrcIP: PeerIP, DstIP: RelayIP,
				SrcPort: PeerPort, DstPort: wire.RelayPort,
				Pool:    wire.Fields{Type: t, Seq: 1, Session: traffic.HopSession(s), Channel: ch},
				Payload: payload,
			}
			buf := make([]byte, 256)
			n, err := wire.Build(buf, &spec)
			if err != nil {
				return nil, fmt.Errorf("pktgen: %w", err)
			}
			frames = append(frames, buf[:n])
		}
		buf := make([]byte, 64)
		n, err := wire.BuildARPRequest(buf, nil, PeerMAC, PeerIP, RelayIP)
		if err != nil {
			return nil, fmt.Errorf("pktgen: %w", err)
		}
		frames = append(frames, buf[:n])
	}
	return frames, nil
}
