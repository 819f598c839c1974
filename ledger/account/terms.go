// Package account is the bilateral arithmetic of one peer: what the peer owes
// us and what we owe it, from cumulative traffic counters, the price tables and
// thresholds both ends announced at enrollment, cheques paid and received, and
// time-based forgiveness.
//
// Both ends of a link keep an Account about each other and, because they
// charge the same traffic at the same announced prices, their balances mirror
// each other: A's balance about B is minus B's balance about A, up to the
// frames lost or in flight between them. Swarm's users saw the two ends drift
// apart; here every input is cumulative (counters, cheque totals), so a lost
// or repeated update can neither lose nor double-count anything, and the only
// honest difference left is the loss on the wire, which heartbeats expose.
//
// An Account has no lock and does no I/O: the ledger serialises access and
// decides when state is made durable.
package account

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// Sentinel errors for announcements a peer makes in the enrollment handshake.
var (
	// ErrThresholdTooSmall: a payment threshold below our minimum. A tiny
	// threshold would make us sign and send a cheque for every few frames.
	ErrThresholdTooSmall = errors.New("account: payment threshold below the minimum accepted")
	// ErrDisconnectNotBeyond: the disconnect threshold must lie beyond the
	// payment threshold, or a peer could cut us off before asking for payment.
	ErrDisconnectNotBeyond = errors.New("account: disconnect threshold not beyond the payment threshold")
	// ErrPriceTooHigh: a price above what we accept to pay.
	ErrPriceTooHigh = errors.New("account: price above the maximum accepted")
	// ErrMalformedTerms: the encoded announcement does not decode.
	ErrMalformedTerms = errors.New("account: malformed terms")
)

// Prices are what a relay charges, in ledger units, for traffic it relays on
// behalf of a peer. The initiator of relayed traffic pays: frames a peer
// hands us to forward are charged to it at our prices, frames we hand it at
// its prices. Control frames (enrollment, route requests, heartbeats,
// cheques) are priced separately and usually far lower, as Swarm prices a
// request two orders of magnitude below its response.
type Prices struct {
	Packet        uint64 `json:"packet"`
	Byte          uint64 `json:"byte"`
	ControlPacket uint64 `json:"control_packet"`
	ControlByte   uint64 `json:"control_byte"`
}

// Charge is the price of relayed and control traffic, saturating at the
// largest uint64 instead of wrapping.
func (p Prices) Charge(relayed, control Traffic) uint64 {
	s := mulSat(relayed.Packets, p.Packet)
	s = addSat(s, mulSat(relayed.Bytes, p.Byte))
	s = addSat(s, mulSat(control.Packets, p.ControlPacket))
	return addSat(s, mulSat(control.Bytes, p.ControlByte))
}

// Terms are what one end announces to the other in the enrollment handshake:
// its prices and thresholds. Both ends keep both announcements so that they
// compute the same charges.
type Terms struct {
	Prices Prices `json:"prices"`
	// Payment is the debt at which the announcer expects a cheque.
	Payment uint64 `json:"payment"`
	// Disconnect is the debt beyond which the announcer chokes the peer and,
	// after a grace period, disconnects it.
	Disconnect uint64 `json:"disconnect"`
	// ForgivePerSecond is how much of the peer's debt the announcer forgives
	// per second of connection; 0 is off.
	ForgivePerSecond uint64 `json:"forgive_per_second"`
}

// Limits bound what a peer may announce to us.
type Limits struct {
	// MinPayment is the smallest payment threshold accepted.
	MinPayment uint64
	// MaxPrices caps each price a peer may charge us; a zero field means no cap.
	MaxPrices Prices
}

// Check reports whether terms announced by a peer are acceptable.
func (t Terms) Check(l Limits) error {
	if t.Payment < l.MinPayment {
		return fmt.Errorf("%w: %d < %d", ErrThresholdTooSmall, t.Payment, l.MinPayment)
	}
	if t.Disconnect <= t.Payment {
		return fmt.Errorf("%w: disconnect %d, payment %d", ErrDisconnectNotBeyond, t.Disconnect, t.Payment)
	}
	for _, c := range []struct {
		name     string
		got, max uint64
	}{
		{"packet", t.Prices.Packet, l.MaxPrices.Packet},
		{"byte", t.Prices.Byte, l.MaxPrices.Byte},
		{"control packet", t.Prices.ControlPacket, l.MaxPrices.ControlPacket},
		{"control byte", t.Prices.ControlByte, l.MaxPrices.ControlByte},
	} {
		if c.max != 0 && c.got > c.max {
			return fmt.Errorf("%w: %s price %d > %d", ErrPriceTooHigh, c.name, c.got, c.max)
		}
	}
	return nil
}

// termsVersion starts the encoding, so that a later format is told apart
// rather than misread.
const termsVersion = 1

// TermsSize is the length of the encoded Terms.
const TermsSize = 1 + 7*8

// AppendBinary appends the canonical encoding: a version byte, then the four
// prices, the payment and disconnect thresholds and the forgiveness rate as
// big-endian uint64s. It never fails.
func (t Terms) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, termsVersion)
	for _, v := range [...]uint64{t.Prices.Packet, t.Prices.Byte, t.Prices.ControlPacket,
		t.Prices.ControlByte, t.Payment, t.Disconnect, t.ForgivePerSecond} {
		dst = binary.BigEndian.AppendUint64(dst, v)
	}
	return dst, nil
}

// UnmarshalBinary decodes exactly TermsSize bytes. It checks the form only;
// Check judges the values.
func (t *Terms) UnmarshalBinary(b []byte) error {
	if len(b) != TermsSize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrMalformedTerms, len(b), TermsSize)
	}
	if b[0] != termsVersion {
		return fmt.Errorf("%w: version %d", ErrMalformedTerms, b[0])
	}
	var v [7]uint64
	for i := range v {
		v[i] = binary.BigEndian.Uint64(b[1+8*i:])
	}
	*t = Terms{Prices: Prices{v[0], v[1], v[2], v[3]}, Payment: v[4], Disconnect: v[5], ForgivePerSecond: v[6]}
	return nil
}

func addSat(a, b uint64) uint64 {
	s, c := bits.Add64(a, b, 0)
	if c != 0 {
		return ^uint64(0)
	}
	return s
}

func mulSat(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return ^uint64(0)
	}
	return lo
}
