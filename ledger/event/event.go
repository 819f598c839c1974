// Package event defines what a journal entry says: the entry types of the
// relay's change journal and the canonical binary body of each.
//
// Bodies are encoded field by field in a fixed order, integers big-endian,
// byte strings and text with a 16-bit length prefix, nothing optional and
// nothing trailing. Decoding therefore accepts exactly one byte string per
// value, which is what lets the journal hash and sign bodies as they are.
package event

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"unicode/utf8"

	"github.com/poolrelay/poolrelay/ledger/account"
	"github.com/poolrelay/poolrelay/ledger/cheque"
	"github.com/poolrelay/poolrelay/ledger/peer"
	"github.com/poolrelay/poolrelay/ledger/score"
)

// Type is a journal entry type. The values are part of the journal format.
type Type uint8

// Entry types. The comment names the body each carries.
const (
	Connect        Type = 1  // PeerNote: a peer's session came up; Note is its address
	Disconnect     Type = 2  // PeerNote: a peer's session ended; Note is the reason
	Enroll         Type = 3  // Enrollment: a peer enrolled and announced its terms
	RouteOpen      Type = 4  // Route: a relayed route was installed
	RouteClose     Type = 5  // Route: a relayed route was removed
	Config         Type = 6  // Text: the configuration was loaded or changed
	Rekey          Type = 7  // PeerNote: a hop key was rotated
	Error          Type = 8  // Text: something went wrong (a torn journal tail, ...)
	ChequeIssued   Type = 9  // ChequeEntry: we signed a cheque to a peer
	ChequeReceived Type = 10 // ChequeEntry: we accepted a cheque from a peer
	ChequeRejected Type = 11 // Rejected: we refused a cheque
	ClassChange    Type = 12 // Reclass: a peer's class was re-decided
	Mismatch       Type = 13 // CounterMismatch: a peer's signed counters disagree with ours
	Choke          Type = 14 // DebtLimit: a peer's debt passed its limit
	Resume         Type = 15 // DebtLimit: a choked peer settled
	Rollback       Type = 16 // Text: a tentative configuration was rolled back (by the operator or its timer)
	// Reconcile: after a restart, traffic the peer's signed lifetime
	// counters show and ours lacked (charges lost since the last
	// checkpoint) was adopted. The body is a CounterMismatch: Ours are our
	// counters before, Theirs the peer's claim, Allowed the bound in price
	// units; what was adopted is, per field, how far Theirs' mirror
	// exceeds Ours (account.Counters.Mirror, Shortfall), and What names the
	// directions adopted ("peer", "us" or "peer,us").
	Reconcile Type = 17
)

// MaxType is the largest defined type.
const MaxType = Reconcile

var typeNames = [...]string{
	Connect: "CONNECT", Disconnect: "DISCONNECT", Enroll: "ENROLL", RouteOpen: "ROUTE_OPEN",
	RouteClose: "ROUTE_CLOSE", Config: "CONFIG", Rekey: "REKEY", Error: "ERROR",
	ChequeIssued: "CHEQUE_ISSUED", ChequeReceived: "CHEQUE_RECEIVED", ChequeRejected: "CHEQUE_REJECTED",
	ClassChange: "CLASS_CHANGE", Mismatch: "MISMATCH", Choke: "CHOKE", Resume: "RESUME",
	Rollback: "ROLLBACK", Reconcile: "RECONCILE",
}

// Valid reports whether t is a defined type.
func (t Type) Valid() bool { return t >= Connect && t <= MaxType }

// String is the type's name as the journal format spells it (CHEQUE_ISSUED).
func (t Type) String() string {
	if t.Valid() {
		return typeNames[t]
	}
	return fmt.Sprintf("TYPE_%d", uint8(t))
}

// ParseType is the inverse of String for defined types.
func ParseType(s string) (Type, bool) {
	for t := Connect; t <= MaxType; t++ {
		if typeNames[t] == s {
			return t, true
		}
	}
	return 0, false
}

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("event: malformed body")

// MaxText is the longest note or reason accepted, in bytes.
const MaxText = 1024

// MaxRaw is the most bytes of a rejected cheque kept in the journal: enough
// for a well-formed signed cheque, bounded for a garbage one.
const MaxRaw = 256

// Body is the decoded body of an entry.
type Body interface {
	// AppendBinary appends the canonical encoding.
	AppendBinary(dst []byte) ([]byte, error)
	decode(d *decoder)
}

// New returns an empty body of the shape type t uses, or nil for an
// undefined type.
func New(t Type) Body {
	switch t {
	case Connect, Disconnect, Rekey:
		return new(PeerNote)
	case Enroll:
		return new(Enrollment)
	case RouteOpen, RouteClose:
		return new(Route)
	case Config, Error, Rollback:
		return new(Text)
	case ChequeIssued, ChequeReceived:
		return new(ChequeEntry)
	case ChequeRejected:
		return new(Rejected)
	case ClassChange:
		return new(Reclass)
	case Mismatch, Reconcile:
		return new(CounterMismatch)
	case Choke, Resume:
		return new(DebtLimit)
	}
	return nil
}

// Marshal encodes b as the body of an entry of type t, checking that the
// shape fits the type.
func Marshal(t Type, b Body) ([]byte, error) {
	want := New(t)
	if want == nil {
		return nil, fmt.Errorf("event: undefined type %d", t)
	}
	if reflect.TypeOf(want) != reflect.TypeOf(b) {
		return nil, fmt.Errorf("event: %s takes a %T body, not %T", t, want, b)
	}
	return b.AppendBinary(nil)
}

// Unmarshal decodes the body of an entry of type t. It never panics on any
// input and accepts only canonical encodings.
func Unmarshal(t Type, data []byte) (Body, error) {
	b := New(t)
	if b == nil {
		return nil, fmt.Errorf("%w: undefined type %d", ErrMalformed, t)
	}
	d := decoder{b: data}
	b.decode(&d)
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, t, d.err)
	}
	return b, nil
}

// PeerNote is a peer and a line of text.
type PeerNote struct {
	Peer peer.ID `json:"peer"`
	Note string  `json:"note"`
}

// AppendBinary implements Body.
func (e *PeerNote) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, e.Peer[:]...)
	return appendText(dst, e.Note)
}

func (e *PeerNote) decode(d *decoder) { d.bytes(e.Peer[:]); e.Note = d.text() }

// Enrollment is a peer's enrollment with the terms it announced.
type Enrollment struct {
	Peer  peer.ID       `json:"peer"`
	Terms account.Terms `json:"terms"`
}

// AppendBinary implements Body.
func (e *Enrollment) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, e.Peer[:]...)
	return e.Terms.AppendBinary(dst)
}

func (e *Enrollment) decode(d *decoder) {
	d.bytes(e.Peer[:])
	if b := d.take(account.TermsSize); d.err == nil {
		if err := e.Terms.UnmarshalBinary(b); err != nil {
			d.fail("%v", err)
		}
	}
}

// SessionID is a hop session (route) id, the key of the data plane's route
// table. It reads as hex in exports.
type SessionID [16]byte

// MarshalText implements encoding.TextMarshaler.
func (s SessionID) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(s[:])), nil }

// Route is a relayed route: its hop session id and the peers it joins.
type Route struct {
	Session SessionID `json:"session"`
	From    peer.ID   `json:"from"`
	To      peer.ID   `json:"to"`
	Note    string    `json:"note"`
}

// AppendBinary implements Body.
func (e *Route) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, e.Session[:]...)
	dst = append(dst, e.From[:]...)
	dst = append(dst, e.To[:]...)
	return appendText(dst, e.Note)
}

func (e *Route) decode(d *decoder) {
	d.bytes(e.Session[:])
	d.bytes(e.From[:])
	d.bytes(e.To[:])
	e.Note = d.text()
}

// Text is a line of text.
type Text struct {
	Note string `json:"note"`
}

// AppendBinary implements Body.
func (e *Text) AppendBinary(dst []byte) ([]byte, error) { return appendText(dst, e.Note) }

func (e *Text) decode(d *decoder) { e.Note = d.text() }

// ChequeEntry is a cheque issued or accepted. Increase is what it added over the
// previous cheque to the same counterparty; Surplus the part of an accepted
// increase that exceeded the debt.
type ChequeEntry struct {
	Signed   cheque.Signed `json:"-"`
	Increase uint64        `json:"increase"`
	Surplus  uint64        `json:"surplus"`
}

// AppendBinary implements Body.
func (e *ChequeEntry) AppendBinary(dst []byte) ([]byte, error) {
	dst, _ = e.Signed.AppendBinary(dst)
	dst = binary.BigEndian.AppendUint64(dst, e.Increase)
	return binary.BigEndian.AppendUint64(dst, e.Surplus), nil
}

func (e *ChequeEntry) decode(d *decoder) {
	if b := d.take(cheque.SignedSize); d.err == nil {
		if err := e.Signed.UnmarshalBinary(b); err != nil {
			d.fail("%v", err)
		}
	}
	e.Increase = d.u64()
	e.Surplus = d.u64()
}

// Rejected is a refused cheque: who sent it, why, and (up to MaxRaw bytes
// of) what it sent.
type Rejected struct {
	Peer   peer.ID `json:"peer"`
	Reason string  `json:"reason"`
	Raw    []byte  `json:"raw"`
}

// AppendBinary implements Body.
func (e *Rejected) AppendBinary(dst []byte) ([]byte, error) {
	if len(e.Raw) > MaxRaw {
		return nil, fmt.Errorf("event: rejected cheque of %d bytes: keep at most %d", len(e.Raw), MaxRaw)
	}
	dst = append(dst, e.Peer[:]...)
	dst, err := appendText(dst, e.Reason)
	if err != nil {
		return nil, err
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(e.Raw)))
	return append(dst, e.Raw...), nil
}

func (e *Rejected) decode(d *decoder) {
	d.bytes(e.Peer[:])
	e.Reason = d.text()
	n := int(d.u16())
	if n > MaxRaw {
		d.fail("raw cheque of %d bytes", n)
		return
	}
	e.Raw = append([]byte(nil), d.take(n)...)
}

// Reclass is a re-decided class. ScoreMilli is the score in thousandths
// (a fixed-point value, so the encoding stays canonical).
type Reclass struct {
	Peer       peer.ID     `json:"peer"`
	From       score.Class `json:"from"`
	To         score.Class `json:"to"`
	ScoreMilli uint64      `json:"score_milli"`
}

// AppendBinary implements Body.
func (e *Reclass) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, e.Peer[:]...)
	dst = append(dst, byte(e.From), byte(e.To))
	return binary.BigEndian.AppendUint64(dst, e.ScoreMilli), nil
}

func (e *Reclass) decode(d *decoder) {
	d.bytes(e.Peer[:])
	e.From, e.To = score.Class(d.u8()), score.Class(d.u8())
	if d.err == nil && (e.From >= score.NumClasses || e.To >= score.NumClasses) {
		d.fail("class %d -> %d", e.From, e.To)
	}
	e.ScoreMilli = d.u64()
}

// CounterMismatch is a cross-check failure: the pair of counters that disagreed
// and both full sets.
type CounterMismatch struct {
	Peer    peer.ID          `json:"peer"`
	What    string           `json:"what"`
	Allowed uint64           `json:"allowed"`
	Ours    account.Counters `json:"ours"`
	Theirs  account.Counters `json:"theirs"`
}

// AppendBinary implements Body.
func (e *CounterMismatch) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, e.Peer[:]...)
	dst, err := appendText(dst, e.What)
	if err != nil {
		return nil, err
	}
	dst = binary.BigEndian.AppendUint64(dst, e.Allowed)
	dst = e.Ours.AppendCanonical(dst)
	return e.Theirs.AppendCanonical(dst), nil
}

func (e *CounterMismatch) decode(d *decoder) {
	d.bytes(e.Peer[:])
	e.What = d.text()
	e.Allowed = d.u64()
	d.counters(&e.Ours)
	d.counters(&e.Theirs)
}

// DebtLimit is a choke or resume decision with the debt and limit behind it.
type DebtLimit struct {
	Peer  peer.ID `json:"peer"`
	Debt  uint64  `json:"debt"`
	Limit uint64  `json:"limit"`
}

// AppendBinary implements Body.
func (e *DebtLimit) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, e.Peer[:]...)
	dst = binary.BigEndian.AppendUint64(dst, e.Debt)
	return binary.BigEndian.AppendUint64(dst, e.Limit), nil
}

func (e *DebtLimit) decode(d *decoder) {
	d.bytes(e.Peer[:])
	e.Debt = d.u64()
	e.Limit = d.u64()
}

func appendText(dst []byte, s string) ([]byte, error) {
	if len(s) > MaxText || !utf8.ValidString(s) {
		return nil, fmt.Errorf("event: text of %d bytes: at most %d of valid UTF-8", len(s), MaxText)
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...), nil
}

// decoder reads fields in order; the first failure sticks and later reads
// return zero values, so decode methods need no error plumbing.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail("truncated: need %d bytes, have %d", n, len(d.b))
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(dst []byte) { copy(dst, d.take(len(dst))) }

func (d *decoder) u8() uint8 {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if b := d.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if b := d.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) text() string {
	n := int(d.u16())
	if d.err == nil && n > MaxText {
		d.fail("text of %d bytes", n)
		return ""
	}
	b := d.take(n)
	if d.err == nil && !utf8.Valid(b) {
		d.fail("text is not UTF-8")
		return ""
	}
	return string(b)
}

func (d *decoder) counters(c *account.Counters) {
	c.Epoch = d.u64()
	c.RelayedFor = account.Traffic{Packets: d.u64(), Bytes: d.u64()}
	c.RelayedBy = account.Traffic{Packets: d.u64(), Bytes: d.u64()}
	c.ControlIn = account.Traffic{Packets: d.u64(), Bytes: d.u64()}
	c.ControlOut = account.Traffic{Packets: d.u64(), Bytes: d.u64()}
}

// MarshalJSON shows the cheque's fields and its raw signed form.
func (e *ChequeEntry) MarshalJSON() ([]byte, error) {
	raw, _ := e.Signed.MarshalBinary()
	return json.Marshal(struct {
		Network     uint32  `json:"network"`
		Issuer      peer.ID `json:"issuer"`
		Beneficiary peer.ID `json:"beneficiary"`
		Cumulative  uint64  `json:"cumulative"`
		Sequence    uint64  `json:"sequence"`
		Date        uint64  `json:"date"`
		Increase    uint64  `json:"increase"`
		Surplus     uint64  `json:"surplus"`
		Signed      string  `json:"signed"`
	}{e.Signed.Network, e.Signed.Issuer, e.Signed.Beneficiary, e.Signed.Cumulative,
		e.Signed.Sequence, e.Signed.Date, e.Increase, e.Surplus, hex.EncodeToString(raw)})
}
