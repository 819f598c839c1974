package handshake

import (
	"encoding/binary"

	"github.com/poolrelay/poolrelay/crypto/identity"
)

// Wire encodings. Every message starts with the same 8 bytes:
//
//	off size
//	  0    1 version (1)
//	  1    1 kind (the POOL frame type)
//	  2    4 network id
//	  6    1 puzzle difficulty (CHALLENGE, RESPONSE) or 0
//	  7    1 reserved, 0
//
// All integers are big-endian; reserved bytes and padding must be zero, and
// every message has exactly one valid length for its payload, so each
// message has one encoding. The layouts that follow are relative to the
// message start.

const headerSize = 8

const (
	// InitSize is the size of an INIT, padded to the size of the CHALLENGE it
	// provokes so that a spoofed INIT cannot make the server send more bytes
	// than it received (no amplification).
	//
	//	  8  32 client Ed25519 identity
	//	 40  32 client ephemeral X25519 public key (the Noise e of RESPONSE)
	//	 72 120 zero padding
	InitSize = 192
	// ChallengeSize is the size of a CHALLENGE.
	//
	//	  8   8 time bucket the cookie was issued in
	//	 16  16 cookie
	//	 32  32 the INIT's ephemeral, echoed so the client can match it
	//	 64 128 server binding: Ed25519 key, X25519 static key, signature
	ChallengeSize = 192
	// ResponseMinSize is the size of a RESPONSE with an empty application
	// payload; the payload adds its length.
	//
	//	  8   8 time bucket (echoed)
	//	 16  16 cookie (echoed)
	//	 32   8 puzzle solution
	//	 40  32 client Ed25519 identity
	//	 72 160+ Noise IK message 1: e (32), encrypted s (48), encrypted
	//	        payload (binding signature 64, application payload, tag 16)
	ResponseMinSize = responseFixed + msg1Overhead
	// AckMinSize is the size of an ACK with an empty application payload.
	//
	//	  8  48+ Noise IK message 2: e (32), encrypted payload (+16)
	AckMinSize = headerSize + msg2Overhead

	responseFixed = 72
	msg1Overhead  = 32 + 32 + 16 + identity.SignatureSize + 16
	msg2Overhead  = 32 + 16
	initUsed      = 72
)

func putHeader(dst []byte, k Kind, network uint32, difficulty uint8) []byte {
	dst = append(dst, Version, byte(k))
	dst = binary.BigEndian.AppendUint32(dst, network)
	return append(dst, difficulty, 0)
}

// checkHeader validates the common header of b for kind k; length checks
// are the caller's, with at least headerSize bytes present.
func checkHeader(b []byte, k Kind, difficultyAllowed bool) error {
	if b[0] != Version {
		return ErrVersion
	}
	if Kind(b[1]) != k {
		return ErrMalformed
	}
	if b[7] != 0 || (!difficultyAllowed && b[6] != 0) || b[6] > MaxDifficulty {
		return ErrMalformed
	}
	return nil
}

// Init is the first message: who the client is and the ephemeral key it
// will use.
type Init struct {
	Network   uint32
	Identity  identity.PublicKey
	Ephemeral [32]byte
}

// AppendBinary appends the InitSize-byte encoding.
func (m *Init) AppendBinary(dst []byte) ([]byte, error) {
	dst = putHeader(dst, KindInit, m.Network, 0)
	dst = append(dst, m.Identity[:]...)
	dst = append(dst, m.Ephemeral[:]...)
	var pad [InitSize - initUsed]byte
	return append(dst, pad[:]...), nil
}

// ParseInit decodes an INIT. It allocates nothing.
func ParseInit(b []byte) (Init, error) {
	var m Init
	if len(b) != InitSize {
		return m, ErrTruncated
	}
	if err := checkHeader(b, KindInit, false); err != nil {
		return m, err
	}
	for _, p := range b[initUsed:] {
		if p != 0 {
			return m, ErrMalformed
		}
	}
	m.Network = binary.BigEndian.Uint32(b[2:6])
	copy(m.Identity[:], b[8:40])
	copy(m.Ephemeral[:], b[40:72])
	return m, nil
}

// Challenge is the server's stateless answer to an INIT.
type Challenge struct {
	Network    uint32
	Difficulty uint8
	Bucket     uint64
	Cookie     [CookieSize]byte
	Ephemeral  [32]byte
	Server     identity.Binding
}

// AppendBinary appends the ChallengeSize-byte encoding.
func (m *Challenge) AppendBinary(dst []byte) ([]byte, error) {
	dst = putHeader(dst, KindChallenge, m.Network, m.Difficulty)
	dst = binary.BigEndian.AppendUint64(dst, m.Bucket)
	dst = append(dst, m.Cookie[:]...)
	dst = append(dst, m.Ephemeral[:]...)
	return m.Server.AppendBinary(dst)
}

// ParseChallenge decodes a CHALLENGE. The binding is not verified here.
func ParseChallenge(b []byte) (Challenge, error) {
	var m Challenge
	if len(b) != ChallengeSize {
		return m, ErrTruncated
	}
	if err := checkHeader(b, KindChallenge, true); err != nil {
		return m, err
	}
	m.Network = binary.BigEndian.Uint32(b[2:6])
	m.Difficulty = b[6]
	m.Bucket = binary.BigEndian.Uint64(b[8:16])
	copy(m.Cookie[:], b[16:32])
	copy(m.Ephemeral[:], b[32:64])
	bind, err := identity.ParseBinding(b[64:])
	if err != nil {
		return m, ErrTruncated // unreachable: the length is checked above
	}
	m.Server = bind
	return m, nil
}

// Response carries the cookie back with the puzzle solution and Noise IK
// message 1.
type Response struct {
	Network    uint32
	Difficulty uint8
	Bucket     uint64
	Cookie     [CookieSize]byte
	Solution   uint64
	Identity   identity.PublicKey
	// Noise is IK message 1. ParseResponse makes it alias its input.
	Noise []byte
}

// Ephemeral returns the client ephemeral key: the first 32 bytes of the
// Noise message, in the clear.
func (m *Response) Ephemeral() (e [32]byte) {
	copy(e[:], m.Noise)
	return e
}

// AppendBinary appends the encoding.
func (m *Response) AppendBinary(dst []byte) ([]byte, error) {
	if len(m.Noise) < msg1Overhead || len(m.Noise) > msg1Overhead+MaxPayload {
		return dst, ErrMalformed
	}
	return append(m.appendFixed(dst), m.Noise...), nil
}

// appendFixed appends the part before the Noise message: the part the
// handshake prologue covers.
func (m *Response) appendFixed(dst []byte) []byte {
	dst = putHeader(dst, KindResponse, m.Network, m.Difficulty)
	dst = binary.BigEndian.AppendUint64(dst, m.Bucket)
	dst = append(dst, m.Cookie[:]...)
	dst = binary.BigEndian.AppendUint64(dst, m.Solution)
	return append(dst, m.Identity[:]...)
}

// ParseResponse decodes a RESPONSE; Noise aliases b.
func ParseResponse(b []byte) (Response, error) {
	var m Response
	if len(b) < ResponseMinSize {
		return m, ErrTruncated
	}
	if len(b) > ResponseMinSize+MaxPayload {
		return m, ErrMalformed
	}
	if err := checkHeader(b, KindResponse, true); err != nil {
		return m, err
	}
	m.Network = binary.BigEndian.Uint32(b[2:6])
	m.Difficulty = b[6]
	m.Bucket = binary.BigEndian.Uint64(b[8:16])
	copy(m.Cookie[:], b[16:32])
	m.Solution = binary.BigEndian.Uint64(b[32:40])
	copy(m.Identity[:], b[40:72])
	m.Noise = b[responseFixed:]
	return m, nil
}

// Ack completes the handshake with Noise IK message 2.
type Ack struct {
	Network uint32
	// Noise is IK message 2. ParseAck makes it alias its input.
	Noise []byte
}

// AppendBinary appends the encoding.
func (m *Ack) AppendBinary(dst []byte) ([]byte, error) {
	if len(m.Noise) < msg2Overhead || len(m.Noise) > msg2Overhead+MaxPayload {
		return dst, ErrMalformed
	}
	dst = putHeader(dst, KindAck, m.Network, 0)
	return append(dst, m.Noise...), nil
}

// ParseAck decodes an ACK; Noise aliases b.
func ParseAck(b []byte) (Ack, error) {
	var m Ack
	if len(b) < AckMinSize {
		return m, ErrTruncated
	}
	if len(b) > AckMinSize+MaxPayload {
		return m, ErrMalformed
	}
	if err := checkHeader(b, KindAck, false); err != nil {
		return m, err
	}
	m.Network = binary.BigEndian.Uint32(b[2:6])
	m.Noise = b[headerSize:]
	return m, nil
}

// Control messages (REKEY, CLOSE) travel inside an established session,
// sealed with ChaCha20-Poly1305 under the sender's control key of a key
// generation:
//
//	off size
//	  0    1 version (1)
//	  1    1 kind (REKEY 6, CLOSE 7)
//	  2    2 reserved, 0
//	  4    4 key generation the message is sealed under
//	  8    8 sequence number (the nonce; anti-replay window per generation)
//	 16    n sealed body, then the 16-byte tag
//
// The additional data is bytes 0..16 followed by the 16-byte session id.
// Bodies:
//
//	REKEY (56): op (1 request, 2 reply), 3 reserved, target generation (4),
//	            Noise KK message (48: e and the empty payload's tag)
//	CLOSE (1):  reason
const (
	controlHeader = 16
	tagSize       = 16
	rekeyBodySize = 8 + 48
	closeBodySize = 1
	// RekeySize and CloseSize are the sizes of the two control messages.
	RekeySize = controlHeader + rekeyBodySize + tagSize
	CloseSize = controlHeader + closeBodySize + tagSize
)

// Rekey operations.
const (
	rekeyRequest = 1
	rekeyReply   = 2
)

// Control is a decoded control envelope, before authentication.
type Control struct {
	Kind       Kind
	Generation uint32
	Seq        uint64
	// Sealed is the encrypted body and tag; it aliases the input.
	Sealed []byte
}

// ParseControl decodes a control envelope's clear part and checks that its
// length is the one its kind allows.
func ParseControl(b []byte) (Control, error) {
	var m Control
	if len(b) < controlHeader {
		return m, ErrTruncated
	}
	if b[0] != Version {
		return m, ErrVersion
	}
	if b[2] != 0 || b[3] != 0 {
		return m, ErrMalformed
	}
	m.Kind = Kind(b[1])
	switch m.Kind {
	case KindRekey:
		if len(b) != RekeySize {
			return m, ErrTruncated
		}
	case KindClose:
		if len(b) != CloseSize {
			return m, ErrTruncated
		}
	default:
		return m, ErrMalformed
	}
	m.Generation = binary.BigEndian.Uint32(b[4:8])
	m.Seq = binary.BigEndian.Uint64(b[8:16])
	m.Sealed = b[controlHeader:]
	return m, nil
}

// rekeyBody is the decrypted body of a REKEY.
type rekeyBody struct {
	op     uint8
	target uint32
	noise  []byte
}

func parseRekeyBody(b []byte) (rekeyBody, error) {
	var r rekeyBody
	if len(b) != rekeyBodySize {
		return r, ErrTruncated
	}
	if (b[0] != rekeyRequest && b[0] != rekeyReply) || b[1] != 0 || b[2] != 0 || b[3] != 0 {
		return r, ErrMalformed
	}
	r.op = b[0]
	r.target = binary.BigEndian.Uint32(b[4:8])
	r.noise = b[8:]
	return r, nil
}

func appendRekeyBody(dst []byte, op uint8, target uint32, msg []byte) []byte {
	dst = append(dst, op, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, target)
	return append(dst, msg...)
}
