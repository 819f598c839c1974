package transport

import (
	"errors"
	"net"
	"net/netip"
)

// socketBuffer is the socket buffer size asked for.
const socketBuffer = 4 << 20

// UDP is a Transport over one UDP socket. Port is always 0 and MAC zero.
type UDP struct {
	conn *net.UDPConn
	// local is the socket's bound address, the source of routes through it.
	local netip.AddrPort
}

// ListenUDP opens a UDP socket on addr ("127.0.0.1:0" picks a port).
func ListenUDP(addr string) (*UDP, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, err
	}
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, err
	}
	// Best effort: a traffic source or sink bursts faster than the default
	// buffers hold; the kernel caps the sizes at its own limits.
	_ = c.SetReadBuffer(socketBuffer)
	_ = c.SetWriteBuffer(socketBuffer)
	return &UDP{conn: c, local: c.LocalAddr().(*net.UDPAddr).AddrPort()}, nil
}

// Addr returns the socket's bound address.
func (u *UDP) Addr() netip.AddrPort { return u.local }

// Recv implements Transport.
func (u *UDP) Recv(buf []byte) (int, Endpoint, error) {
	for {
		n, from, err := u.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return 0, Endpoint{}, ErrClosed
			}
			return 0, Endpoint{}, err
		}
		if n == len(buf) {
			continue // possibly truncated: drop it, as documented
		}
		return n, Endpoint{Addr: netip.AddrPortFrom(from.Addr().Unmap(), from.Port())}, nil
	}
}

// Send implements Transport.
func (u *UDP) Send(to Endpoint, frame []byte) error {
	_, err := u.conn.WriteToUDPAddrPort(frame, to.Addr)
	if errors.Is(err, net.ErrClosed) {
		return ErrClosed
	}
	return err
}

// Local implements Transport: the socket's address.
func (u *UDP) Local(int, netip.Addr) (Endpoint, bool) { return Endpoint{Addr: u.local}, true }

// Close implements Transport.
func (u *UDP) Close() error { return u.conn.Close() }
