package proto

import (
	"encoding/binary"
	"net/netip"

	"github.com/poolrelay/poolrelay/crypto/address"
	"github.com/poolrelay/poolrelay/ledger/account"
	"github.com/poolrelay/poolrelay/ledger/cheque"
)

// Kind is the kind of a sealed relay-control message.
type Kind uint8

// Kinds. The values are part of the wire format.
const (
	// KindTerms re-announces enrollment terms after the handshake: the
	// relay's terms for this peer (its credit line), which the stateless ACK
	// cannot carry.
	KindTerms Kind = 1
	// KindRouteOpen asks the relay to carry a session to a next hop.
	KindRouteOpen Kind = 2
	// KindRouteOK confirms a route.
	KindRouteOK Kind = 3
	// KindRouteError refuses a route request.
	KindRouteError Kind = 4
	// KindRouteClose closes a route (either end).
	KindRouteClose Kind = 5
	// KindHeartbeat is a signed heartbeat (in a HEARTBEAT frame).
	KindHeartbeat Kind = 6
	// KindCheque carries a signed cheque.
	KindCheque Kind = 7
	// KindChequeAck acknowledges the cumulative total held from the peer.
	KindChequeAck Kind = 8
	// KindChequeRefused answers a cheque the receiver could not take now,
	// with the reason (ChequeRefusal): the issuer keeps it due and sends it
	// again later.
	KindChequeRefused Kind = 9
)

func (k Kind) sealed() bool { return k >= KindTerms && k <= KindChequeRefused }

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindTerms:
		return "TERMS"
	case KindRouteOpen:
		return "ROUTE_OPEN"
	case KindRouteOK:
		return "ROUTE_OK"
	case KindRouteError:
		return "ROUTE_ERROR"
	case KindRouteClose:
		return "ROUTE_CLOSE"
	case KindHeartbeat:
		return "HEARTBEAT"
	case KindCheque:
		return "CHEQUE"
	case KindChequeAck:
		return "CHEQUE_ACK"
	case KindChequeRefused:
		return "CHEQUE_REFUSED"
	}
	return "UNKNOWN"
}

// Role says what kind of node announced an enrollment.
type Role uint8

// Roles.
const (
	RoleNode  Role = 1 // an end node
	RoleRelay Role = 2 // a relay
)

// Capabilities are feature bits announced at enrollment.
type Capabilities uint32

// Capability bits; the others are reserved and must be zero.
const (
	// CapRelay: the announcer relays frames for others.
	CapRelay Capabilities = 1 << iota
	// CapIPProto: the announcer accepts POOL directly in IP (protocol 253).
	CapIPProto
	capAll = CapRelay | CapIPProto
)

// EnrollmentSize is the size of an Enrollment.
const EnrollmentSize = 8 + account.TermsSize

// Enrollment is what each end announces in the handshake payload (and the
// relay again in TERMS): its role, capabilities, and its terms (prices and
// thresholds, account.Terms' canonical encoding).
//
//	off size
//	  0    1 version (1)
//	  1    1 role
//	  2    2 reserved, 0
//	  4    4 capabilities
//	  8   57 terms
type Enrollment struct {
	Role         Role
	Capabilities Capabilities
	Terms        account.Terms
}

// AppendBinary appends the encoding.
func (e *Enrollment) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, Version, byte(e.Role), 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(e.Capabilities))
	return e.Terms.AppendBinary(dst)
}

// UnmarshalBinary decodes exactly EnrollmentSize bytes.
func (e *Enrollment) UnmarshalBinary(b []byte) error {
	if len(b) != EnrollmentSize {
		return ErrTruncated
	}
	if b[0] != Version {
		return ErrVersion
	}
	r, caps := Role(b[1]), Capabilities(binary.BigEndian.Uint32(b[4:8]))
	if (r != RoleNode && r != RoleRelay) || b[2] != 0 || b[3] != 0 || caps&^capAll != 0 {
		return ErrMalformed
	}
	var t account.Terms
	if err := t.UnmarshalBinary(b[8:]); err != nil {
		return ErrMalformed
	}
	*e = Enrollment{Role: r, Capabilities: caps, Terms: t}
	return nil
}

// MaxOnward bounds the onward hops of a ROUTE_OPEN: a route of more hops is
// opened hop by hop.
const MaxOnward = 4

// Endpoint is an optional transport address in a ROUTE_OPEN: where the next
// hop can be reached if the relay does not already know it.
//
//	off size
//	  0    1 family: 0 none, 4, 6
//	  1    1 reserved, 0
//	  2    2 UDP port (0: IP protocol 253)
//	  4   16 address (IPv4 as ::ffff:a.b.c.d; zero when family is 0)
const endpointSize = 20

// RouteOpen asks the relay to carry session Session to the next hop Next.
//
//	off size
//	  0    4 request id (echoed in ROUTE_OK / ROUTE_ERROR)
//	  4    4 lifetime in seconds (0: the relay's maximum)
//	  8   16 session id S
//	 24   32 next hop POOL address
//	 56   20 next hop endpoint (optional)
//	 76    1 onward hop count n (at most MaxOnward)
//	 77    3 reserved, 0
//	 80 32*n onward hop addresses, for the next hop to extend the route
type RouteOpen struct {
	Request  uint32
	Lifetime uint32
	Session  [16]byte
	Next     address.Address
	// Endpoint is the next hop's transport address, invalid when absent.
	Endpoint netip.AddrPort
	Onward   []address.Address
}

const routeOpenFixed = 80

// AppendBinary appends the encoding.
func (m *RouteOpen) AppendBinary(dst []byte) ([]byte, error) {
	if len(m.Onward) > MaxOnward {
		return dst, ErrMalformed
	}
	dst = binary.BigEndian.AppendUint32(dst, m.Request)
	dst = binary.BigEndian.AppendUint32(dst, m.Lifetime)
	dst = append(dst, m.Session[:]...)
	dst = append(dst, m.Next[:]...)
	dst = appendEndpoint(dst, m.Endpoint)
	dst = append(dst, byte(len(m.Onward)), 0, 0, 0)
	for _, a := range m.Onward {
		dst = append(dst, a[:]...)
	}
	return dst, nil
}

// UnmarshalBinary decodes a ROUTE_OPEN. Addresses must be valid (checksum).
func (m *RouteOpen) UnmarshalBinary(b []byte) error {
	if len(b) < routeOpenFixed {
		return ErrTruncated
	}
	n := int(b[76])
	if n > MaxOnward || b[77]|b[78]|b[79] != 0 {
		return ErrMalformed
	}
	if len(b) != routeOpenFixed+n*address.Size {
		return ErrTruncated
	}
	var r RouteOpen
	r.Request = binary.BigEndian.Uint32(b[0:4])
	r.Lifetime = binary.BigEndian.Uint32(b[4:8])
	copy(r.Session[:], b[8:24])
	if r.Session == ([16]byte{}) {
		return ErrMalformed
	}
	if err := r.Next.UnmarshalBinary(b[24:56]); err != nil {
		return ErrMalformed
	}
	ep, err := parseEndpoint(b[56:76])
	if err != nil {
		return err
	}
	r.Endpoint = ep
	for i := range n {
		var a address.Address
		if err := a.UnmarshalBinary(b[routeOpenFixed+i*address.Size : routeOpenFixed+(i+1)*address.Size]); err != nil {
			return ErrMalformed
		}
		r.Onward = append(r.Onward, a)
	}
	*m = r
	return nil
}

func appendEndpoint(dst []byte, ep netip.AddrPort) []byte {
	if !ep.IsValid() {
		return append(dst, make([]byte, endpointSize)...)
	}
	fam := byte(6)
	if ep.Addr().Unmap().Is4() {
		fam = 4
	}
	dst = append(dst, fam, 0)
	dst = binary.BigEndian.AppendUint16(dst, ep.Port())
	a := ep.Addr().As16()
	return append(dst, a[:]...)
}

func parseEndpoint(b []byte) (netip.AddrPort, error) {
	fam, port := b[0], binary.BigEndian.Uint16(b[2:4])
	a := netip.AddrFrom16([16]byte(b[4:20]))
	switch {
	case b[1] != 0:
		return netip.AddrPort{}, ErrMalformed
	case fam == 0:
		if port != 0 || !a.IsUnspecified() {
			return netip.AddrPort{}, ErrMalformed
		}
		return netip.AddrPort{}, nil
	case fam == 4:
		if !a.Is4In6() {
			return netip.AddrPort{}, ErrMalformed
		}
		return netip.AddrPortFrom(a.Unmap(), port), nil
	case fam == 6:
		if a.Is4In6() {
			return netip.AddrPort{}, ErrMalformed
		}
		return netip.AddrPortFrom(a, port), nil
	}
	return netip.AddrPort{}, ErrMalformed
}

// RouteOKSize is the size of a ROUTE_OK.
const RouteOKSize = 32

// RouteOK confirms a route until Expires (Unix ns).
//
//	off size
//	  0    4 request id
//	  4    4 reserved, 0
//	  8   16 session id
//	 24    8 expiry, Unix ns
type RouteOK struct {
	Request uint32
	Session [16]byte
	Expires int64
}

// AppendBinary appends the encoding.
func (m *RouteOK) AppendBinary(dst []byte) ([]byte, error) {
	dst = binary.BigEndian.AppendUint32(dst, m.Request)
	dst = append(dst, 0, 0, 0, 0)
	dst = append(dst, m.Session[:]...)
	return binary.BigEndian.AppendUint64(dst, uint64(m.Expires)), nil
}

// UnmarshalBinary decodes a ROUTE_OK.
func (m *RouteOK) UnmarshalBinary(b []byte) error {
	if len(b) != RouteOKSize {
		return ErrTruncated
	}
	if binary.BigEndian.Uint32(b[4:8]) != 0 || int64(binary.BigEndian.Uint64(b[24:32])) < 0 {
		return ErrMalformed
	}
	m.Request = binary.BigEndian.Uint32(b[0:4])
	copy(m.Session[:], b[8:24])
	m.Expires = int64(binary.BigEndian.Uint64(b[24:32]))
	return nil
}

// RouteCode says why a route was refused or closed.
type RouteCode uint8

// Route codes.
const (
	CodeClosed      RouteCode = 0 // closed by its owner
	CodeUnknownPeer RouteCode = 1 // the next hop is not enrolled here
	CodeInUse       RouteCode = 2 // the session id (or its reverse) is taken
	CodeFull        RouteCode = 3 // the route table is full
	CodeRefused     RouteCode = 4 // policy refuses the route
	CodeExpired     RouteCode = 5 // the lifetime ended
	CodeInternal    RouteCode = 6 // the relay failed to install it
	CodePeerGone    RouteCode = 7 // a peer of the route disconnected
	CodeJournal     RouteCode = 8 // the relay's journal cannot record it now
	maxCode                   = CodeJournal
)

// RouteErrorSize is the size of a ROUTE_ERROR and of a ROUTE_CLOSE.
const RouteErrorSize = 24

// RouteError refuses request Request for Session (ROUTE_ERROR), or closes
// Session (ROUTE_CLOSE, Request 0).
//
//	off size
//	  0    4 request id
//	  4    1 code
//	  5    3 reserved, 0
//	  8   16 session id
type RouteError struct {
	Request uint32
	Code    RouteCode
	Session [16]byte
}

// AppendBinary appends the encoding.
func (m *RouteError) AppendBinary(dst []byte) ([]byte, error) {
	dst = binary.BigEndian.AppendUint32(dst, m.Request)
	dst = append(dst, byte(m.Code), 0, 0, 0)
	return append(dst, m.Session[:]...), nil
}

// UnmarshalBinary decodes a ROUTE_ERROR or ROUTE_CLOSE.
func (m *RouteError) UnmarshalBinary(b []byte) error {
	if len(b) != RouteErrorSize {
		return ErrTruncated
	}
	if RouteCode(b[4]) > maxCode || b[5]|b[6]|b[7] != 0 {
		return ErrMalformed
	}
	m.Request = binary.BigEndian.Uint32(b[0:4])
	m.Code = RouteCode(b[4])
	copy(m.Session[:], b[8:24])
	return nil
}

// RefuseCode says why a cheque was not taken (CHEQUE_REFUSED).
type RefuseCode uint8

// Refusal codes.
const (
	// RefuseJournal: the receiver's journal cannot record the cheque now
	// (a full disk); nothing was credited. Send it again later.
	RefuseJournal RefuseCode = 1
	maxRefuse                = RefuseJournal
)

// String names the code.
func (c RefuseCode) String() string {
	if c == RefuseJournal {
		return "journal_unavailable"
	}
	return "unknown"
}

// ChequeRefusalSize is the size of a CHEQUE_REFUSED.
const ChequeRefusalSize = 16

// ChequeRefusal is a CHEQUE_REFUSED: why the last cheque was not taken, and
// the cumulative total the receiver holds from the issuer.
//
//	off size
//	  0    1 code
//	  1    7 reserved, 0
//	  8    8 cumulative total held
type ChequeRefusal struct {
	Code       RefuseCode
	Cumulative uint64
}

// AppendBinary appends the encoding.
func (m *ChequeRefusal) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, byte(m.Code), 0, 0, 0, 0, 0, 0, 0)
	return binary.BigEndian.AppendUint64(dst, m.Cumulative), nil
}

// UnmarshalBinary decodes a CHEQUE_REFUSED.
func (m *ChequeRefusal) UnmarshalBinary(b []byte) error {
	if len(b) != ChequeRefusalSize {
		return ErrTruncated
	}
	if b[0] == 0 || RefuseCode(b[0]) > maxRefuse || b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
		return ErrMalformed
	}
	m.Code, m.Cumulative = RefuseCode(b[0]), binary.BigEndian.Uint64(b[8:])
	return nil
}

// ChequeAckSize is the size of a CHEQUE_ACK.
const ChequeAckSize = 8

// ChequeSize is the size of a CHEQUE body: the ledger's signed cheque.
const ChequeSize = cheque.SignedSize

// AppendChequeAck appends a CHEQUE_ACK: the cumulative total now held.
func AppendChequeAck(dst []byte, cumulative uint64) []byte {
	return binary.BigEndian.AppendUint64(dst, cumulative)
}

// ParseChequeAck decodes a CHEQUE_ACK.
func ParseChequeAck(b []byte) (uint64, error) {
	if len(b) != ChequeAckSize {
		return 0, ErrTruncated
	}
	return binary.BigEndian.Uint64(b), nil
}

// ReverseSession is the session id of a route's reverse direction: S with
// the top bit of its first byte flipped. Both end nodes compute it, the
// relay installs both, and it is an involution, so either end's id names
// the other's.
func ReverseSession(s [16]byte) [16]byte {
	s[0] ^= 0x80
	return s
}
