package proto

import (
	"errors"

	"github.com/poolrelay/poolrelay/crypto/handshake"
	"github.com/poolrelay/poolrelay/dataplane/wire"
)

// ChannelControl is the POOL channel of relay control.
const ChannelControl = 2

// Version is the version byte of sealed messages and of the enrollment
// payload.
const Version = 1

// MaxFrame bounds a control frame: header, prefix and the largest body,
// plus room for the tag while it is sealed or opened. Buffers of this
// capacity hold any valid control frame and let Seal and Open work without
// allocating.
const MaxFrame = wire.HeaderLen + prefixLen + maxBody + tagLen

// Errors. Each rejection has its own sentinel so that it can be counted.
var (
	// ErrTruncated: a frame or body shorter or longer than its encoding.
	ErrTruncated = errors.New("proto: message has the wrong length")
	// ErrMalformed: a field holds a value the encoding does not allow.
	ErrMalformed = errors.New("proto: malformed message")
	// ErrVersion: an unknown version byte.
	ErrVersion = errors.New("proto: unknown version")
	// ErrAuth: the tag does not verify (forged or corrupted).
	ErrAuth = errors.New("proto: authentication failed")
	// ErrReplay: a sequence number already accepted, or older than the
	// replay window.
	ErrReplay = errors.New("proto: replayed message")
	// ErrStale: a timestamp further from our clock than the allowed skew.
	ErrStale = errors.New("proto: stale message")
	// ErrGeneration: a key generation the session does not hold.
	ErrGeneration = errors.New("proto: unknown key generation")
	// ErrSession: a frame for another session.
	ErrSession = errors.New("proto: wrong session")
	// ErrSignature: a heartbeat whose signature does not verify.
	ErrSignature = errors.New("proto: bad signature")
)

// Frame is a view of a received control frame after ParseFrame: the POOL
// header and its payload, both aliasing the input.
type Frame struct {
	Header  wire.Header
	Payload []byte
}

// Type returns the frame's POOL type.
func (f Frame) Type() wire.Type { return f.Header.Type() }

// Session returns the frame's session id.
func (f Frame) Session() [16]byte { return [16]byte(f.Header.Session()) }

// ParseFrame checks the POOL header of b (version, type, reserved bits,
// payload length equal to what follows, channel 2) and returns the view.
func ParseFrame(b []byte) (Frame, error) {
	if len(b) < wire.HeaderLen {
		return Frame{}, ErrTruncated
	}
	h := wire.Header(b[:wire.HeaderLen])
	switch h.Check(len(b) - wire.HeaderLen) {
	case wire.DropNone:
	case wire.DropTruncated, wire.DropPayloadLength:
		return Frame{}, ErrTruncated
	case wire.DropBadVersion:
		return Frame{}, ErrVersion
	default:
		return Frame{}, ErrMalformed
	}
	if int(h.PayloadLen()) != len(b)-wire.HeaderLen {
		return Frame{}, ErrTruncated
	}
	if h.Channel() != ChannelControl {
		return Frame{}, ErrMalformed
	}
	return Frame{Header: h, Payload: b[wire.HeaderLen:]}, nil
}

// IsHandshake reports whether a frame type carries a crypto/handshake message
// in the clear.
func IsHandshake(t wire.Type) bool {
	switch t {
	case wire.TypeInit, wire.TypeChallenge, wire.TypeResponse, wire.TypeAck, wire.TypeRekey, wire.TypeClose:
		return true
	}
	return false
}

// AppendHandshake appends a POOL frame carrying the handshake message msg of
// kind k: its type is the kind, session is the session id (zero before the
// session exists), timestamp the sender's clock in ns.
func AppendHandshake(dst []byte, k handshake.Kind, session [16]byte, timestamp uint64, msg []byte) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, wire.HeaderLen)...)
	h := wire.Header(dst[n : n+wire.HeaderLen])
	h.Put(&wire.Fields{Type: wire.Type(k), Session: wire.SessionID(session), Timestamp: timestamp, Channel: ChannelControl}, uint16(len(msg)))
	return append(dst, msg...)
}
