package main

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestUDPFrame(t *testing.T) {
	for _, size := range []int{42, 128, 1500} {
		f := udpFrame(size)
		if len(f) != size {
			t.Fatalf("udpFrame(%d) is %d bytes", size, len(f))
		}
		var sum uint32
		for i := 14; i < 34; i += 2 {
			sum += uint32(binary.BigEndian.Uint16(f[i:]))
		}
		for sum > 0xffff {
			sum = sum>>16 + sum&0xffff
		}
		if sum != 0xffff {
			t.Errorf("size %d: IPv4 header checksum does not verify (%#x)", size, sum)
		}
		if got := int(binary.BigEndian.Uint16(f[16:])); got != size-14 {
			t.Errorf("size %d: IP total length %d", size, got)
		}
		if got := int(binary.BigEndian.Uint16(f[38:])); got != size-34 {
			t.Errorf("size %d: UDP length %d", size, got)
		}
	}
}

func TestSwapMAC(t *testing.T) {
	f := udpFrame(64)
	want := append(append(append([]byte{}, f[6:12]...), f[0:6]...), f[12:]...)
	swapMAC(f)
	if !bytes.Equal(f, want) {
		t.Fatalf("swapMAC:\n got %x\nwant %x", f, want)
	}
	short := []byte{1, 2, 3}
	swapMAC(short)
	if !bytes.Equal(short, []byte{1, 2, 3}) {
		t.Fatal("swapMAC changed a frame shorter than two addresses")
	}
	if n := testing.AllocsPerRun(100, func() { swapMAC(f) }); n != 0 {
		t.Fatalf("swapMAC allocates %v times", n)
	}
}

// A testpmd answer to "show port stats all" for two ports, abridged.
const testpmdAnswer = `testpmd> show port stats all

  ######################## NIC statistics for port 0  ########################
  RX-packets: 119877152  RX-missed: 0          RX-bytes:  0
  Throughput (since last show)
  Rx-pps:     %d          Rx-bps:            0
  Tx-pps:     %d          Tx-bps:            0
  ############################################################################

  ######################## NIC statistics for port 1  ########################
  Throughput (since last show)
  Rx-pps:     %d          Rx-bps:            0
  Tx-pps:     %d          Tx-bps:            0
  ############################################################################
`

func TestTestpmdOutput(t *testing.T) {
	var out strings.Builder
	out.WriteString("EAL: Detected CPU lcores: 2\ntestpmd> start\nio packet forwarding - ports=2 - cores=1 - streams=2\n")
	for _, r := range []int{0, 30_000_000, 31_000_000} {
		out.WriteString(strings.ReplaceAll(testpmdAnswer, "%d", strconv.Itoa(r)))
	}
	o := newTestpmdOutput(strings.NewReader(out.String()))
	<-o.started
	<-o.done
	if got, want := o.rates(2), []float64{0, 60, 62}; !slices.Equal(got, want) {
		t.Fatalf("rates %v, want %v", got, want)
	}
}

func TestPickCores(t *testing.T) {
	if m, w, err := pickCores("2,5"); err != nil || m != 2 || w != 5 {
		t.Errorf("pickCores(2,5) = %d, %d, %v", m, w, err)
	}
	for _, bad := range []string{"1", "1,1", "a,b", "-1,2"} {
		if _, _, err := pickCores(bad); err == nil {
			t.Errorf("pickCores(%q) accepted", bad)
		}
	}
}
