package wire

import (
	"encoding/binary"
	"encoding/hex"
	"math/bits"
	"strconv"
	"strings"

	"github.com/poolrelay/poolrelay/internal/poolhdr"
)

// POOL header geometry (POOL spec v1, pool_proto.h): 80 bytes, big-endian.
// The layout is internal/poolhdr's, which crypto/hopmac reads too; these are
// its names for this package's callers.
const (
	// HeaderLen is the length of the POOL header.
	HeaderLen = poolhdr.Len
	// Version is the only POOL version this codec accepts and writes.
	Version = 1
	// MACLen is the length of the MAC field at the end of the header, and
	// MACOffset where it starts: the hop MAC (crypto/hopmac) signs the
	// header and payload with this field zeroed and stores its tag here.
	MACLen    = poolhdr.MACLen
	MACOffset = poolhdr.MAC
	// SeqOffset is where the 8-byte sequence number starts; the hop MAC's
	// nonce is the header's first 12 bytes, which end with it.
	SeqOffset = poolhdr.Seq
	// MaxPayloadLen is the largest payload the 16-bit length field can
	// announce.
	MaxPayloadLen = 0xffff
)

// Offsets of the POOL header fields (see internal/poolhdr).
const (
	offVerType   = poolhdr.VerType
	offReserved1 = poolhdr.Reserved1
	offFlags     = poolhdr.Flags
	offSeq       = poolhdr.Seq
	offAck       = poolhdr.Ack
	offSession   = poolhdr.Session
	offTimestamp = poolhdr.Timestamp
	offPayLen    = poolhdr.PayLen
	offChannel   = poolhdr.Channel
	offReserved2 = poolhdr.Reserved2
	offMAC       = poolhdr.MAC
)

// Type is the POOL packet type, the low nibble of the header's first byte.
type Type uint8

// The twelve POOL packet types.
const (
	TypeInit      Type = 0x0
	TypeChallenge Type = 0x1
	TypeResponse  Type = 0x2
	TypeData      Type = 0x3
	TypeAck       Type = 0x4
	TypeHeartbeat Type = 0x5
	TypeRekey     Type = 0x6
	TypeClose     Type = 0x7
	TypeConfig    Type = 0x8
	TypeRollback  Type = 0x9
	TypeDiscover  Type = 0xA
	TypeJournal   Type = 0xB
	// NumTypes is the number of defined types, for per-type counter arrays;
	// types at or above it are unknown.
	NumTypes = 12
)

var typeNames = [NumTypes]string{
	"INIT", "CHALLENGE", "RESPONSE", "DATA", "ACK", "HEARTBEAT",
	"REKEY", "CLOSE", "CONFIG", "ROLLBACK", "DISCOVER", "JOURNAL",
}

// Valid reports whether t is one of the twelve defined types.
func (t Type) Valid() bool { return t < NumTypes }

// String returns the type's name as the POOL spec writes it, or TYPE(n).
func (t Type) String() string {
	if t.Valid() {
		return typeNames[t]
	}
	return "TYPE(" + strconv.Itoa(int(t)) + ")"
}

// Flags is the POOL header's 16-bit flags field.
type Flags uint16

// The POOL flags. Bits 11 to 15 are reserved and must be zero.
const (
	FlagEncrypted     Flags = 1 << 0
	FlagCompressed    Flags = 1 << 1
	FlagPriority      Flags = 1 << 2
	FlagFragment      Flags = 1 << 3
	FlagLastFrag      Flags = 1 << 4
	FlagRequireAck    Flags = 1 << 5
	FlagTelemetry     Flags = 1 << 6
	FlagRollbackReady Flags = 1 << 7
	FlagConfigLocked  Flags = 1 << 8
	FlagJournalSync   Flags = 1 << 9
	// FlagDeprioritised is the relays' downgrade-only priority mark: the
	// first relay that queues a frame as deprioritised for a peer that
	// gives it no credit (a heavy consumer that has not relayed for it)
	// sets it, no relay clears it, and every relay after it queues the
	// frame as deprioritised whatever it thinks of the peer that handed
	// the frame over (sched.Relayed). The hop MAC of the hop that set it
	// covers it, as it covers the whole header, and it only ever lowers a
	// frame's class: forging it gains nothing. An end node ignores it. (It
	// was reserved bit 10.)
	FlagDeprioritised Flags = 1 << 10
	// FlagsReserved is the mask of the reserved bits.
	FlagsReserved Flags = 0xf800
)

var flagNames = [...]string{
	"ENCRYPTED", "COMPRESSED", "PRIORITY", "FRAGMENT", "LAST_FRAG",
	"REQUIRE_ACK", "TELEMETRY", "ROLLBACK_READY", "CONFIG_LOCKED", "JOURNAL_SYNC",
	"DEPRIORITISED",
}

// Has reports whether every flag of g is set in f.
func (f Flags) Has(g Flags) bool { return f&g == g }

// String returns the set flags joined by "|" ("ENCRYPTED|PRIORITY"), reserved
// bits as a hexadecimal remainder, and "0" for no flags.
func (f Flags) String() string {
	if f == 0 {
		return "0"
	}
	var sb strings.Builder
	for i, name := range flagNames {
		if f&(1<<i) != 0 {
			if sb.Len() > 0 {
				sb.WriteByte('|')
			}
			sb.WriteString(name)
		}
	}
	if r := f & FlagsReserved; r != 0 {
		if sb.Len() > 0 {
			sb.WriteByte('|')
		}
		sb.WriteString("0x")
		sb.WriteString(strconv.FormatUint(uint64(r), 16))
	}
	return sb.String()
}

// Channels the framing assigns meaning to.
const (
	// ChannelData carries relayed traffic.
	ChannelData = 0
	// ChannelRelayControl carries enrollment, route requests, heartbeats and
	// cheques between a peer and the relay.
	ChannelRelayControl = 2
)

// SessionID is the POOL header's 16-byte session identifier; on a relayed
// hop it is the hop session the route table is keyed by.
type SessionID [16]byte

// String returns the session id in hexadecimal.
func (s SessionID) String() string { return hex.EncodeToString(s[:]) }

// Hash returns a 64-bit hash of the session id under seed, for hash tables
// keyed by session. It costs two 64-bit multiplications. With a secret seed
// an outsider cannot aim session ids at one bucket without seeing the
// table's behaviour; it is not a MAC and must not be used as one.
func (s SessionID) Hash(seed uint64) uint64 {
	// Two rounds of the multiply-fold mixer: a 64x64->128 multiplication
	// spreads every input bit over the product, and folding the halves
	// together keeps what the low half alone would lose. The odd constants
	// are the golden ratio and a prime from the SplitMix64 finaliser.
	const k0, k1 = 0x9e3779b97f4a7c15, 0xbf58476d1ce4e5b9
	lo := binary.LittleEndian.Uint64(s[:8])
	hi := binary.LittleEndian.Uint64(s[8:])
	h, l := bits.Mul64(lo^seed^k0, hi^k1)
	h, l = bits.Mul64(h^l^seed, k1)
	return h ^ l
}

// Header is a view of a POOL header: the first HeaderLen bytes of a POOL
// frame. Its methods index the slice directly; call them only on a slice of at
// least HeaderLen bytes.
type Header []byte

// Version returns the protocol version (the high nibble of byte 0).
func (h Header) Version() uint8 { return h[offVerType] >> 4 }

// Type returns the packet type (the low nibble of byte 0).
func (h Header) Type() Type { return Type(h[offVerType] & 0xf) }

// Flags returns the flags field.
func (h Header) Flags() Flags { return Flags(binary.BigEndian.Uint16(h[offFlags:])) }

// Seq returns the sequence number.
func (h Header) Seq() uint64 { return binary.BigEndian.Uint64(h[offSeq:]) }

// Ack returns the acknowledgement number.
func (h Header) Ack() uint64 { return binary.BigEndian.Uint64(h[offAck:]) }

// Session returns the session id.
func (h Header) Session() SessionID { return SessionID(h[offSession : offSession+16]) }

// Timestamp returns the timestamp in nanoseconds.
func (h Header) Timestamp() uint64 { return binary.BigEndian.Uint64(h[offTimestamp:]) }

// PayloadLen returns the payload length field.
func (h Header) PayloadLen() uint16 { return binary.BigEndian.Uint16(h[offPayLen:]) }

// Channel returns the channel number.
func (h Header) Channel() uint8 { return h[offChannel] }

// MAC returns the MAC field.
func (h Header) MAC() [MACLen]byte { return [MACLen]byte(h[offMAC : offMAC+MACLen]) }

// MACBytes returns the MAC field as a slice of the header, for code that
// computes the MAC in place (zeroing it, hashing the header, writing it).
func (h Header) MACBytes() []byte { return h[offMAC : offMAC+MACLen : offMAC+MACLen] }

// Reserved returns the two reserved bytes (offsets 1 and 47), which must be zero.
func (h Header) Reserved() (uint8, uint8) { return h[offReserved1], h[offReserved2] }

// SetVersionType sets the version and type byte.
func (h Header) SetVersionType(version uint8, t Type) { h[offVerType] = version<<4 | uint8(t)&0xf }

// SetType sets the packet type and leaves the version as it is.
func (h Header) SetType(t Type) { h[offVerType] = h[offVerType]&0xf0 | uint8(t)&0xf }

// SetFlags sets the flags field.
func (h Header) SetFlags(f Flags) { binary.BigEndian.PutUint16(h[offFlags:], uint16(f)) }

// SetSeq sets the sequence number.
func (h Header) SetSeq(v uint64) { binary.BigEndian.PutUint64(h[offSeq:], v) }

// SetAck sets the acknowledgement number.
func (h Header) SetAck(v uint64) { binary.BigEndian.PutUint64(h[offAck:], v) }

// SetSession sets the session id.
func (h Header) SetSession(s SessionID) { copy(h[offSession:offSession+16], s[:]) }

// SetTimestamp sets the timestamp in nanoseconds.
func (h Header) SetTimestamp(v uint64) { binary.BigEndian.PutUint64(h[offTimestamp:], v) }

// SetPayloadLen sets the payload length field.
func (h Header) SetPayloadLen(n uint16) { binary.BigEndian.PutUint16(h[offPayLen:], n) }

// SetChannel sets the channel number.
func (h Header) SetChannel(c uint8) { h[offChannel] = c }

// SetMAC sets the MAC field.
func (h Header) SetMAC(m [MACLen]byte) { copy(h[offMAC:offMAC+MACLen], m[:]) }

// SetReserved sets the two reserved bytes; only tests have a reason to make
// them non-zero.
func (h Header) SetReserved(r1, r2 uint8) { h[offReserved1], h[offReserved2] = r1, r2 }

// Check validates the header against the payload that follows it in the
// datagram (n bytes, header excluded): version, type, reserved bits and the
// payload length, in that order. It returns DropNone for a valid header.
func (h Header) Check(n int) DropReason {
	if len(h) < HeaderLen {
		return DropTruncated
	}
	return checkPool((*[HeaderLen]byte)(h), n)
}

// checkPool is Header.Check on an array, the form Classify uses so that
// every index is checked at compile time.
func checkPool(p *[HeaderLen]byte, n int) DropReason {
	switch {
	case p[offVerType]>>4 != Version:
		return DropBadVersion
	case p[offVerType]&0xf >= NumTypes:
		return DropUnknownType
	case p[offReserved1]|p[offReserved2] != 0 ||
		binary.BigEndian.Uint16(p[offFlags:])&uint16(FlagsReserved) != 0:
		return DropReservedBits
	case int(binary.BigEndian.Uint16(p[offPayLen:])) != n:
		return DropPayloadLength
	}
	return DropNone
}

// Fields holds every field of a POOL header but the version (always
// Version), the reserved bytes (always zero) and the payload length (the
// builder derives it from the payload): the builders' input and
// Header.Fields' output.
type Fields struct {
	Type      Type
	Flags     Flags
	Seq       uint64
	Ack       uint64
	Session   SessionID
	Timestamp uint64
	Channel   uint8
	MAC       [MACLen]byte
}

// Fields returns the header's fields.
func (h Header) Fields() Fields {
	return Fields{
		Type:      h.Type(),
		Flags:     h.Flags(),
		Seq:       h.Seq(),
		Ack:       h.Ack(),
		Session:   h.Session(),
		Timestamp: h.Timestamp(),
		Channel:   h.Channel(),
		MAC:       h.MAC(),
	}
}

// Put writes a complete header: version, f's fields, the payload length and
// zero reserved bytes.
func (h Header) Put(f *Fields, payloadLen uint16) {
	_ = h[HeaderLen-1]
	h.SetVersionType(Version, f.Type)
	h.SetReserved(0, 0)
	h.SetFlags(f.Flags)
	h.SetSeq(f.Seq)
	h.SetAck(f.Ack)
	h.SetSession(f.Session)
	h.SetTimestamp(f.Timestamp)
	h.SetPayloadLen(payloadLen)
	h.SetChannel(f.Channel)
	h.SetMAC(f.MAC)
}
