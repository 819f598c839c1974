// Package transport carries POOL control frames between the control core (or
// an end node) and the network: over an ordinary UDP socket (end nodes, tests
// without DPDK), or over the data plane's punt and inject paths, where it
// strips and adds the Ethernet, VLAN, IP and UDP headers itself.
//
// Both speak the same interface in POOL bytes (80-byte header and payload),
// so the control core never knows which one it runs on.
package transport

import (
	"errors"
	"net/netip"

	"github.com/poolrelay/poolrelay/dataplane/wire"
)

// Endpoint is where a frame came from or goes to: the port (data plane port
// index; 0 on a UDP socket), the remote transport address (UDP port 0 means
// POOL directly in IP, protocol 253), the remote's MAC and VLAN as learnt from
// its frames (zero on a UDP socket).
type Endpoint struct {
	Port int
	Addr netip.AddrPort
	MAC  wire.MAC
	VLAN uint16
}

// String is the remote transport address, for logs and the journal.
func (e Endpoint) String() string { return e.Addr.String() }

// Transport moves POOL frames. Recv and Send may be called from different
// goroutines; each by one goroutine at a time.
type Transport interface {
	// Recv waits for the next POOL frame and copies it into buf, returning
	// its length and origin. It returns ErrClosed once Close was called.
	// A frame longer than buf is dropped, not truncated.
	Recv(buf []byte) (int, Endpoint, error)
	// Send sends a POOL frame to an endpoint. It does not keep frame.
	Send(to Endpoint, frame []byte) error
	// Local returns this end's endpoint on port towards remote: the source
	// address, UDP port and MAC that routes through port use.
	Local(port int, remote netip.Addr) (Endpoint, bool)
	// Close ends Recv.
	Close() error
}

// Errors.
var (
	// ErrClosed: the transport is closed.
	ErrClosed = errors.New("transport: closed")
	// ErrNoRoute: no local address of the remote's family on the port, or
	// no MAC for the remote.
	ErrNoRoute = errors.New("transport: no route to endpoint")
	// ErrTooLarge: a frame does not fit the buffer or the MTU.
	ErrTooLarge = errors.New("transport: frame too large")
)
