package journal

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/ledger/peer"
)

// Head identifies the state of a journal: its id, its last durable record
// and that record's hash (which commits to every record before it).
type Head struct {
	ID    [16]byte
	Index uint64
	Hash  Hash
}

const (
	// headTag is the domain tag of a signed head, 16 bytes like the others.
	headTag = "poolrelay-jhd-v1"
	// HeadSize is the length of an encoded Head.
	HeadSize = len(headTag) + 16 + 8 + HashSize
	// SignedHeadSize is the length of a signed head on the wire.
	SignedHeadSize = HeadSize + ed25519.SignatureSize
)

// Sentinel errors of signed heads.
var (
	// ErrMalformedHead: a signed head that does not decode.
	ErrMalformedHead = errors.New("journal: malformed signed head")
	// ErrBadHeadSignature: a signed head whose signature does not verify.
	ErrBadHeadSignature = errors.New("journal: bad head signature")
)

// AppendBinary appends the canonical encoding: the tag, the id, the index
// and the hash.
func (h *Head) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, headTag...)
	dst = append(dst, h.ID[:]...)
	dst = binary.BigEndian.AppendUint64(dst, h.Index)
	return append(dst, h.Hash[:]...), nil
}

// SignedHead is a head signed with the relay's identity key.
type SignedHead struct {
	Head
	Sig [ed25519.SignatureSize]byte
}

// SignHead signs h with signer (an Ed25519 key as crypto.Signer).
func SignHead(h Head, signer crypto.Signer) (SignedHead, error) {
	var buf [HeadSize]byte
	msg, _ := h.AppendBinary(buf[:0])
	sig, err := identity.SignEd25519(signer, msg)
	if err != nil {
		return SignedHead{}, fmt.Errorf("journal: head: %w", err)
	}
	return SignedHead{Head: h, Sig: sig}, nil
}

// AppendBinary appends the head and its signature (SignedHeadSize bytes).
func (s *SignedHead) AppendBinary(dst []byte) ([]byte, error) {
	dst, _ = s.Head.AppendBinary(dst)
	return append(dst, s.Sig[:]...), nil
}

// ParseSignedHead decodes a signed head received from a peer. It does not
// verify the signature: call Verify with the peer's key.
func ParseSignedHead(b []byte) (SignedHead, error) {
	var s SignedHead
	if len(b) != SignedHeadSize {
		return s, fmt.Errorf("%w: %d bytes, want %d", ErrMalformedHead, len(b), SignedHeadSize)
	}
	if !bytes.Equal(b[:len(headTag)], []byte(headTag)) {
		return s, fmt.Errorf("%w: domain tag", ErrMalformedHead)
	}
	b = b[len(headTag):]
	copy(s.ID[:], b[:16])
	s.Index = binary.BigEndian.Uint64(b[16:])
	copy(s.Hash[:], b[24:24+HashSize])
	copy(s.Sig[:], b[24+HashSize:])
	return s, nil
}

// Verify checks the signature under the signer's identity key.
func (s *SignedHead) Verify(signer peer.ID) error {
	var buf [HeadSize]byte
	msg, _ := s.Head.AppendBinary(buf[:0])
	if !ed25519.Verify(signer[:], msg, s.Sig[:]) {
		return ErrBadHeadSignature
	}
	return nil
}
