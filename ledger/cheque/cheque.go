// Package cheque is the relay's settlement instrument: a cumulative promise to
// pay, signed with the issuer's Ed25519 identity key.
//
// # Encoding
//
// A cheque has one canonical binary form (all integers big-endian), and the
// signature covers exactly those bytes, never a re-serialisation:
//
//	off  len  field
//	  0   16  domain tag "poolrelay-chq-v1" (binds the signature to this use)
//	 16    4  network id (a cheque of another POOL network is refused)
//	 20   32  issuer: Ed25519 public key of the payer
//	 52   32  beneficiary: Ed25519 public key of the payee
//	 84    8  cumulative amount: everything ever paid to this beneficiary
//	 92    8  sequence: 1 for the first cheque, +1 for each later one
//	100    8  date: Unix seconds at issue
//	108       end of the signed part (Size)
//	108   64  Ed25519 signature over bytes 0..108 (SignedSize = 172)
//
// The amount is cumulative, as in Swarm's chequebook: a cheque supersedes
// every earlier one, so a lost cheque costs nothing once a later one arrives,
// and the receiver credits only the increase over the last cheque it accepted.
// A cheque whose total does not increase is refused, which also makes a
// replayed cheque worthless.
//
// # Settlement file
//
// WriteJSONL writes one JSON object per line and per cheque:
//
//	{"direction":"received","peer":"<hex>","network":1,"issuer":"<hex>",
//	 "beneficiary":"<hex>","cumulative":123,"sequence":4,
//	 "date":"2026-01-02T03:04:05Z","signed":"<344 hex digits>"}
//
// direction is "received" (the peer owes us the cumulative amount) or "issued"
// (we owe it); peer is the counterparty; signed is the raw 172-byte signed
// cheque, enough for anyone to check the signature without trusting the rest
// of the line. WriteRaw writes just the raw signed cheques back to back.
package cheque

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/ledger/peer"
)

const (
	// DomainTag starts every encoded cheque. It is exactly 16 bytes; a new
	// encoding gets a new tag, so no signature is ever valid under two meanings.
	DomainTag = "poolrelay-chq-v1"
	// Size is the length of the signed part of a cheque.
	Size = len(DomainTag) + 4 + 2*ed25519.PublicKeySize + 3*8
	// SignedSize is the length of a cheque followed by its signature.
	SignedSize = Size + ed25519.SignatureSize
)

// Sentinel errors. Each rejection wraps exactly one of them, so callers (and
// the CHEQUE_REJECTED journal entry) can say why.
var (
	// ErrMalformed: wrong length, wrong domain tag, zero or equal keys.
	ErrMalformed = errors.New("cheque: malformed")
	// ErrBadSignature: the signature does not verify under the issuer key.
	ErrBadSignature = errors.New("cheque: bad signature")
	// ErrWrongIssuer: signed by someone other than the peer that sent it.
	ErrWrongIssuer = errors.New("cheque: wrong issuer")
	// ErrWrongBeneficiary: payable to someone other than this relay.
	ErrWrongBeneficiary = errors.New("cheque: wrong beneficiary")
	// ErrWrongNetwork: issued for another POOL network.
	ErrWrongNetwork = errors.New("cheque: wrong network")
	// ErrReplay: a sequence number at or below the last accepted one.
	ErrReplay = errors.New("cheque: replayed")
	// ErrNotIncreasing: a new sequence number, but the cumulative amount does
	// not exceed the last accepted one.
	ErrNotIncreasing = errors.New("cheque: cumulative amount not increasing")
)

// Cheque is the signed content of a cheque.
type Cheque struct {
	Network     uint32
	Issuer      peer.ID
	Beneficiary peer.ID
	// Cumulative is the total ever promised by Issuer to Beneficiary.
	Cumulative uint64
	// Sequence numbers the issuer's cheques to this beneficiary from 1.
	Sequence uint64
	// Date is the issue time in Unix seconds.
	Date uint64
}

// Time returns the issue date.
func (c *Cheque) Time() time.Time { return time.Unix(int64(c.Date), 0).UTC() }

// AppendBinary appends the canonical encoding of c to dst. It never fails;
// the error result satisfies encoding.BinaryAppender.
func (c *Cheque) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, DomainTag...)
	dst = binary.BigEndian.AppendUint32(dst, c.Network)
	dst = append(dst, c.Issuer[:]...)
	dst = append(dst, c.Beneficiary[:]...)
	dst = binary.BigEndian.AppendUint64(dst, c.Cumulative)
	dst = binary.BigEndian.AppendUint64(dst, c.Sequence)
	dst = binary.BigEndian.AppendUint64(dst, c.Date)
	return dst, nil
}

// MarshalBinary returns the canonical encoding of c.
func (c *Cheque) MarshalBinary() ([]byte, error) { return c.AppendBinary(make([]byte, 0, Size)) }

// UnmarshalBinary decodes exactly Size bytes. It checks the form, not the
// meaning: keys present and distinct, sequence from 1, amount not zero.
func (c *Cheque) UnmarshalBinary(b []byte) error {
	if len(b) != Size {
		return fmt.Errorf("%w: %d bytes, want %d", ErrMalformed, len(b), Size)
	}
	if string(b[:len(DomainTag)]) != DomainTag {
		return fmt.Errorf("%w: domain tag %q", ErrMalformed, b[:len(DomainTag)])
	}
	b = b[len(DomainTag):]
	var d Cheque
	d.Network = binary.BigEndian.Uint32(b)
	copy(d.Issuer[:], b[4:36])
	copy(d.Beneficiary[:], b[36:68])
	d.Cumulative = binary.BigEndian.Uint64(b[68:])
	d.Sequence = binary.BigEndian.Uint64(b[76:])
	d.Date = binary.BigEndian.Uint64(b[84:])
	if err := d.wellFormed(); err != nil {
		return err
	}
	*c = d
	return nil
}

func (c *Cheque) wellFormed() error {
	switch {
	case c.Issuer.IsZero() || c.Beneficiary.IsZero():
		return fmt.Errorf("%w: zero key", ErrMalformed)
	case c.Issuer == c.Beneficiary:
		return fmt.Errorf("%w: issuer is the beneficiary", ErrMalformed)
	case c.Sequence == 0:
		return fmt.Errorf("%w: sequence 0", ErrMalformed)
	case c.Cumulative == 0:
		return fmt.Errorf("%w: cumulative amount 0", ErrMalformed)
	case c.Network == 0:
		return fmt.Errorf("%w: network 0", ErrMalformed)
	}
	return nil
}

// Signed is a cheque with the issuer's signature.
type Signed struct {
	Cheque
	Sig [ed25519.SignatureSize]byte
}

// Sign signs c with signer, which must hold the issuer's Ed25519 key (an
// ed25519.PrivateKey, or any crypto.Signer over one, such as a key kept by
// the identity package or an HSM).
func Sign(c Cheque, signer crypto.Signer) (Signed, error) {
	if err := c.wellFormed(); err != nil {
		return Signed{}, err
	}
	pub, ok := signer.Public().(ed25519.PublicKey)
	if !ok || !bytes.Equal(pub, c.Issuer[:]) {
		return Signed{}, fmt.Errorf("%w: signer key is not the issuer", ErrWrongIssuer)
	}
	msg, _ := c.MarshalBinary()
	sig, err := identity.SignEd25519(signer, msg)
	if err != nil {
		return Signed{}, fmt.Errorf("cheque: %w", err)
	}
	return Signed{Cheque: c, Sig: sig}, nil
}

// AppendBinary appends the cheque and its signature (SignedSize bytes).
func (s *Signed) AppendBinary(dst []byte) ([]byte, error) {
	dst, _ = s.Cheque.AppendBinary(dst)
	return append(dst, s.Sig[:]...), nil
}

// MarshalBinary returns the SignedSize-byte wire form.
func (s *Signed) MarshalBinary() ([]byte, error) {
	return s.AppendBinary(make([]byte, 0, SignedSize))
}

// UnmarshalBinary decodes the wire form. It does not verify the signature:
// call Verify or Check.
func (s *Signed) UnmarshalBinary(b []byte) error {
	if len(b) != SignedSize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrMalformed, len(b), SignedSize)
	}
	var d Signed
	if err := d.Cheque.UnmarshalBinary(b[:Size]); err != nil {
		return err
	}
	copy(d.Sig[:], b[Size:])
	*s = d
	return nil
}

// Parse decodes a signed cheque received from the network.
func Parse(b []byte) (Signed, error) {
	var s Signed
	err := s.UnmarshalBinary(b)
	return s, err
}

// Verify checks the signature under the issuer key. Go's ed25519.Verify
// rejects non-canonical signatures, so a valid cheque has exactly one wire form.
func (s *Signed) Verify() error {
	var buf [Size]byte
	msg, _ := s.Cheque.AppendBinary(buf[:0])
	if !ed25519.Verify(s.Issuer[:], msg, s.Sig[:]) {
		return ErrBadSignature
	}
	return nil
}

// Expect is what a receiver requires of a cheque: it must come from the peer
// that sent it, be payable to us and belong to our network.
type Expect struct {
	Network     uint32
	Issuer      peer.ID
	Beneficiary peer.ID
}

// Check verifies everything about s that does not depend on history:
// network, issuer, beneficiary and signature. The cheap comparisons run
// first so that a misdirected cheque costs no signature verification.
func (s *Signed) Check(e Expect) error {
	switch {
	case s.Network != e.Network:
		return fmt.Errorf("%w: network %d, want %d", ErrWrongNetwork, s.Network, e.Network)
	case s.Issuer != e.Issuer:
		return fmt.Errorf("%w: issued by %s, sent by %s", ErrWrongIssuer, s.Issuer.Short(), e.Issuer.Short())
	case s.Beneficiary != e.Beneficiary:
		return fmt.Errorf("%w: payable to %s", ErrWrongBeneficiary, s.Beneficiary.Short())
	}
	return s.Verify()
}

// Last is the receiver's memory of one issuer: the last accepted cheque.
type Last struct {
	Cumulative uint64
	Sequence   uint64
}

// Increase returns by how much c raises the total over last, or ErrReplay /
// ErrNotIncreasing. It is the one place the monotonicity rule lives.
func Increase(last Last, c *Cheque) (uint64, error) {
	if c.Sequence <= last.Sequence {
		return 0, fmt.Errorf("%w: sequence %d, last accepted %d", ErrReplay, c.Sequence, last.Sequence)
	}
	if c.Cumulative <= last.Cumulative {
		return 0, fmt.Errorf("%w: %d, last accepted %d", ErrNotIncreasing, c.Cumulative, last.Cumulative)
	}
	return c.Cumulative - last.Cumulative, nil
}

// Reason returns a short stable word for the sentinel err wraps ("replay",
// "bad_signature", ...), for journal entries and metrics labels; "other" when
// it wraps none.
func Reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.word
		}
	}
	return "other"
}

var reasons = []struct {
	err  error
	word string
}{
	{ErrMalformed, "malformed"},
	{ErrBadSignature, "bad_signature"},
	{ErrWrongIssuer, "wrong_issuer"},
	{ErrWrongBeneficiary, "wrong_beneficiary"},
	{ErrWrongNetwork, "wrong_network"},
	{ErrReplay, "replay"},
	{ErrNotIncreasing, "not_increasing"},
}
