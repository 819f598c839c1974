package relay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane/wire"
	"github.com/poolrelay/poolrelay/dataplane/wire/wiretest"
)

// vethHop is one hop session of the veth tests: the sending peer's slots
// and key on the way in, the receiving peer's on the way out, and the UDP
// port the route delivers to.
type vethHop struct {
	session         wire.SessionID
	inPeer, inKey   uint32
	outPeer, outKey uint32
	dstPort         uint16
	rx, tx          []byte // the peer's key towards the relay, the relay's towards the receiver
}

// hopFrame returns the UDP payload a sending peer puts on the hop: an outer
// POOL header (DATA, channel 0, session, seq) followed by inner, with the
// hop MAC under k.
func hopFrame(session wire.SessionID, seq uint64, inner []byte, k *hopmac.Key) []byte {
	b := make([]byte, wire.HeaderLen+len(inner))
	f := wire.Fields{Type: wire.TypeData, Channel: wire.ChannelData, Session: session, Seq: seq,
		Timestamp: 0x1122334455667788, Ack: seq ^ 0xa5}
	wire.Header(b).Put(&f, uint16(len(inner)))
	copy(b[wire.HeaderLen:], inner)
	k.Sign(b)
	return b
}

// innerFrame returns the end-to-end frame of the n-th valid frame of hop
// index h: an inner POOL frame whose payload starts with h and n (so the
// receiver can tell which frame arrived) and is padded to size bytes with a
// pattern derived from both.
func innerFrame(h, n, size int) []byte {
	p := make([]byte, size)
	p[0] = byte(h)
	binary.BigEndian.PutUint32(p[1:], uint32(n))
	for i := 5; i < size; i++ {
		p[i] = byte(i*7 + n + h*13)
	}
	return wiretest.Inner(p)
}

// innerID reads back what innerFrame wrote: the hop index and frame number.
func innerID(inner []byte) (h, n int, ok bool) {
	if len(inner) < wire.HeaderLen+5 {
		return 0, 0, false
	}
	p := inner[wire.HeaderLen:]
	return int(p[0]), int(binary.BigEndian.Uint32(p[1:])), true
}

// datagram is what a receiver socket read: the payload, the socket's port
// and the sender's address.
type datagram struct {
	port uint16
	from netip.AddrPort
	data []byte
}

// collector reads datagrams from the receiver's sockets until it closes
// them.
type collector struct {
	conns []*net.UDPConn
	wg    sync.WaitGroup

	mu   sync.Mutex
	got  []datagram
	errs []error
}

// read starts a goroutine that reads c until close, recording each
// datagram as having arrived on port. The collector owns c from here on.
func (col *collector) read(c *net.UDPConn, port uint16) {
	col.conns = append(col.conns, c)
	col.wg.Add(1)
	go func() {
		defer col.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					col.mu.Lock()
					col.errs = append(col.errs, fmt.Errorf("read on port %d: %w", port, err))
					col.mu.Unlock()
				}
				return
			}
			col.mu.Lock()
			col.got = append(col.got, datagram{port: port, from: from, data: bytes.Clone(buf[:n])})
			col.mu.Unlock()
		}
	}()
}

// count returns how many datagrams have arrived.
func (col *collector) count() int {
	col.mu.Lock()
	defer col.mu.Unlock()
	return len(col.got)
}

// close closes the sockets, waits for the readers to end and returns what
// arrived and the read errors. A second close returns the same.
func (col *collector) close() ([]datagram, error) {
	for _, c := range col.conns {
		c.Close()
	}
	col.wg.Wait()
	col.mu.Lock()
	defer col.mu.Unlock()
	return col.got, errors.Join(col.errs...)
}

// pollUntil polls cond every millisecond until it holds or d passed, and
// reports whether it held.
func pollUntil(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); !cond(); {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}
