package vdevtest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/dataplane/dpdk/dpdktest"
	"github.com/poolrelay/poolrelay/dataplane/dpdk/dpdktest/testmain"
	"github.com/poolrelay/poolrelay/internal/netns"
)

// The EAL starts once per process, on ordinary pages under a file prefix
// carrying the pid; the tests hot-plug their ports.
var env dpdktest.Env[*dpdk.EAL]

func TestMain(m *testing.M) {
	o := dpdktest.Options{Name: "vdevtest", Prefix: "poolrelay_vdev_", MemoryMB: 256, LogLevel: 5,
		NotRoot: "not root: DPDK and network namespaces need root"}
	os.Exit(testmain.Run(m, &env, o))
}

func TestAFPacket(t *testing.T) {
	forwardTest(t, func(iface string, id int) string { return AFPacketDevice(id, iface) })
}

func TestAFXDP(t *testing.T) {
	forwardTest(t, func(iface string, id int) string { return AFXDPDevice(10+id, iface) })
}

// Datagrams the sender sends, and the receiver's port.
const (
	datagrams = 2000
	window    = 64
	rxPort    = 9254
)

// forwardCounts are what the forwarder saw, per direction.
type forwardCounts struct {
	ab, ba    atomic.Uint64 // frames moved A->B and B->A
	foreignAB atomic.Uint64 // frames A->B that are not the test's datagrams
}

// forwardTest builds a netns.Line, opens DPDK ports with device(iface, i)
// on its root-namespace ends, forwards frames between them unchanged on a
// worker, sends datagrams numbered 0..datagrams-1 from the sender
// namespace and expects each, once and in order, in the receiver
// namespace, with the forwarder's and ports' counters agreeing.
func forwardTest(t *testing.T, device func(iface string, id int) string) {
	env.Need(t)
	e, err := netns.ForTest(t, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	line, err := e.NewLine(netns.LineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var ports [2]*dpdk.Port
	for i, iface := range []string{line.PortA, line.PortB} {
		pc := dataplane.DefaultPortConfig()
		pc.Device = device(iface, i)
		pc.Name, pc.RxQueues, pc.TxQueues = dpdk.PortName(pc.Device), 1, 1
		// A pool per port: net_af_xdp registers its RX pool's memory as
		// the socket's UMEM, and a second socket on the same UMEM fails
		// ("Failed to configure xdp socket") unless shared_umem=1. Frames
		// it sends from another pool are copied into its UMEM.
		pools := env.EAL.NewPools(fmt.Sprintf("%s%d", t.Name(), i), 4095, 128, 0)
		p, err := env.EAL.OpenPort(pc, 1, pools)
		if err != nil {
			t.Fatalf("open %s: %v", pc.Device, err)
		}
		t.Logf("opened %s: driver %s", pc.Device, p.Driver())
		ports[i] = p
		t.Cleanup(func() {
			if err := p.Close(); err != nil {
				t.Errorf("close %s: %v", pc.Device, err)
			}
		})
	}
	// Record how the kernel attached the PMD's XDP program, if any:
	// "xdp" is native (driver) mode, "xdpgeneric" the skb fallback.
	var link bytes.Buffer
	if err := netns.Root.Run(t.Context(), &link, "ip", "-d", "-o", "link", "show", "dev", line.PortA); err == nil {
		for _, w := range strings.Fields(link.String()) {
			if w == "xdp" || w == "xdpgeneric" || w == "xdpdrv" || w == "xdpoffload" {
				t.Logf("%s: XDP attached as %q", line.PortA, w)
			}
		}
	}
	var counts forwardCounts
	w, err := env.EAL.StartWorker(env.WorkCore, func(w *dpdk.Worker) error {
		return forward(w, ports, &counts)
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			w.Stop()
			if err := w.Wait(); err != nil {
				t.Error(err)
			}
		}
	}
	defer stop()

	rx, err := line.Receiver.ListenUDP(netip.AddrPortFrom(line.ReceiverAddr, rxPort))
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := line.Sender.DialUDP(netip.AddrPort{}, netip.AddrPortFrom(line.ReceiverAddr, rxPort))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()

	// The receiver counts what arrives; the sender keeps at most a
	// window of datagrams unanswered, so a forwarder descheduled on a
	// loaded machine delays the test instead of overflowing the veth's
	// XDP ring (256 frames) or the PMD's RX ring, which would make a
	// loss that says nothing about the PMD.
	var arrived atomic.Int64
	got := make(chan []uint32, 1)
	go func() {
		var seqs []uint32
		buf := make([]byte, 2048)
		for len(seqs) < datagrams {
			rx.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := rx.Read(buf)
			if err != nil {
				break
			}
			if n == 512 {
				seqs = append(seqs, binary.BigEndian.Uint32(buf))
				arrived.Add(1)
			}
		}
		got <- seqs
	}()
	payload := make([]byte, 512)
	for i := 0; i < datagrams; i++ {
		binary.BigEndian.PutUint32(payload, uint32(i))
		if _, err := tx.Write(payload); err != nil {
			t.Fatal(err)
		}
		if i%window == window-1 {
			for deadline := time.Now().Add(2 * time.Second); arrived.Load() <= int64(i) && time.Now().Before(deadline); {
				time.Sleep(100 * time.Microsecond)
			}
		}
	}
	seqs := <-got
	stop()
	for i, s := range seqs {
		if s != uint32(i) {
			var kernel bytes.Buffer
			netns.Root.Run(t.Context(), &kernel, "ip", "-s", "link", "show", "dev", line.PortA)
			t.Fatalf("datagram %d arrived as number %d: reordered, duplicated or lost; kernel's view of %s:\n%s",
				s, i, line.PortA, kernel.String())
		}
	}
	sa, _ := ports[0].Stats()
	sb, _ := ports[1].Stats()
	t.Logf("received %d of %d; forwarder A->B %d (foreign %d), B->A %d; port A %+v; port B %+v",
		len(seqs), datagrams, counts.ab.Load(), counts.foreignAB.Load(), counts.ba.Load(), sa, sb)
	if len(seqs) != datagrams {
		var kernel bytes.Buffer
		netns.Root.Run(t.Context(), &kernel, "ip", "-s", "link", "show", "dev", line.PortA)
		t.Fatalf("received %d of %d datagrams; kernel's view of %s:\n%s", len(seqs), datagrams, line.PortA, kernel.String())
	}
	if counts.ab.Load() != datagrams || counts.foreignAB.Load() != 0 || counts.ba.Load() != 0 {
		t.Fatalf("forwarder moved %d frames A->B (%d foreign) and %d B->A; want exactly %d, 0 and 0",
			counts.ab.Load(), counts.foreignAB.Load(), counts.ba.Load(), datagrams)
	}
	if sa.RxPackets != datagrams || sb.TxPackets != datagrams || sa.RxMissed+sb.TxErrors != 0 {
		t.Fatalf("port counters: A rx %d missed %d, B tx %d errors %d; want %d each and no loss",
			sa.RxPackets, sa.RxMissed, sb.TxPackets, sb.TxErrors, datagrams)
	}
}

// forward moves every frame between the two ports unchanged, counting
// them and the A->B frames that are not IPv4/UDP to rxPort.
func forward(w *dpdk.Worker, ports [2]*dpdk.Port, c *forwardCounts) error {
	b, err := env.EAL.NewBurst(dpdk.BurstConfig{
		Size: 32,
		Tx:   []dpdk.Queue{ports[0].TxQueue(0), ports[1].TxQueue(0)},
		// -1: any socket; veths have none.
		Socket: -1,
	})
	if err != nil {
		return err
	}
	defer b.Close()
	rxq := [2]dpdk.Queue{ports[0].RxQueue(0), ports[1].RxQueue(0)}
	for !w.Stopping() {
		ms := b.Cycle(rxq[0])
		for _, m := range ms {
			if !isTestDatagram(m.Data()) {
				c.foreignAB.Add(1)
			}
		}
		b.SendBurst(1, ms)
		c.ab.Add(uint64(len(ms)))
		ms = b.Cycle(rxq[1])
		b.SendBurst(0, ms)
		c.ba.Add(uint64(len(ms)))
	}
	b.Flush()
	return nil
}

// isTestDatagram reports whether f is an untagged IPv4/UDP frame to rxPort.
func isTestDatagram(f []byte) bool {
	return len(f) >= 42 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[23] == 17 &&
		binary.BigEndian.Uint16(f[14+int(f[14]&0xf)*4+2:]) == rxPort
}
