// Package traffic builds the relayed POOL frames that pool_gen sends and
// bench/pktgen writes to pcaps, and recognises them when they come back.
//
// A frame is Ethernet / IPv4 or IPv6 / UDP (to the relay port, 9254, by
// default) / outer POOL header, type DATA, channel 0, for hop session
// HopSession(i) / inner POOL frame. The inner frame is a whole POOL frame
// (80-byte header, DATA, end-to-end session EndSession(i), and a payload
// pattern) when the frame size leaves room for one, MinFullSize bytes and
// up; smaller frames, such as the 128-byte benchmark size, carry the first
// bytes of such an inner frame, which is all they can: a relay never reads
// the inner frame, so it forwards either the same way.
//
// With a hop key, the outer MAC field holds a valid hop MAC (package
// crypto/hopmac) under that key, so a relay that verifies the incoming hop
// with the same key accepts the frames, and Builder.Restamp gives a reused
// frame a fresh seq and MAC for its session, with its UDP checksum patched
// rather than recomputed.
//
// Session ids are recognisable: a fixed 12-byte tag followed by the
// session's index, big-endian, so a receiver counts what comes back per
// session (SessionIndex) without a table.
package traffic

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane/wire"
)

// Errors callers can test with errors.Is.
var (
	ErrSize     = errors.New("traffic: frame size out of range")
	ErrSessions = errors.New("traffic: session count out of range")
	ErrKey      = errors.New("traffic: hop key must be 32 bytes")
	ErrAddrs    = errors.New("traffic: source and destination must be IPv4 or IPv6 alike")
	ErrNotOurs  = errors.New("traffic: not a generated frame")
)

const (
	// MaxSessions bounds the session count: indexes fit the id's last 4
	// bytes, and a receiver keeps one counter per session.
	MaxSessions = 1 << 24
	// MaxSize is the largest frame: a standard Ethernet payload of 1500
	// bytes plus the 14-byte header.
	MaxSize = 1514
)

// The tags that start generated session ids: "pool-gen-hop" and
// "pool-gen-e2e".
var (
	hopTag = [12]byte{'p', 'o', 'o', 'l', '-', 'g', 'e', 'n', '-', 'h', 'o', 'p'}
	e2eTag = [12]byte{'p', 'o', 'o', 'l', '-', 'g', 'e', 'n', '-', 'e', '2', 'e'}
)

// HopSession returns the outer (hop) session id of session i: the route id
// a relay's route table must hold for the frames to be relayed.
func HopSession(i int) wire.SessionID { return sessionID(hopTag, i) }

// EndSession returns the inner (end-to-end) session id of session i.
func EndSession(i int) wire.SessionID { return sessionID(e2eTag, i) }

func sessionID(tag [12]byte, i int) wire.SessionID {
	var s wire.SessionID
	copy(s[:], tag[:])
	binary.BigEndian.PutUint32(s[12:], uint32(i))
	return s
}

// SessionIndex returns the index of a hop or end-to-end session id that
// HopSession or EndSession made, and whether it is one.
func SessionIndex(s wire.SessionID) (int, bool) {
	if [12]byte(s[:12]) != hopTag && [12]byte(s[:12]) != e2eTag {
		return 0, false
	}
	return int(binary.BigEndian.Uint32(s[12:])), true
}

// Spec describes the frames of a run.
type Spec struct {
	// Size is the Ethernet frame length without FCS, from MinSize(ipv6)
	// to MaxSize.
	Size int
	// Sessions is how many hop sessions the frames cycle through.
	Sessions int
	// Dst and Src are the Ethernet addresses: the relay port's and the
	// sender's.
	Dst, Src wire.MAC
	// SrcIP and DstIP: the sender and the relay port's address.
	SrcIP, DstIP netip.Addr
	// SrcPort and DstPort are the UDP ports; DstPort 0 means wire.RelayPort.
	SrcPort, DstPort uint16
	// Key is the 32-byte hop key the frames are MACed under; nil leaves
	// the MAC field zero.
	Key []byte
	// FirstSeq is the seq before the first frame's (which gets FirstSeq+1):
	// 0 for keys new to the receiver, hopmac.ClockSeq for a pre-shared key
	// that earlier runs used.
	FirstSeq uint64
}

// Header lengths of the outer layers.
const (
	outer4 = wire.EthernetLen + wire.IPv4MinLen + wire.UDPLen + wire.HeaderLen
	outer6 = wire.EthernetLen + wire.IPv6Len + wire.UDPLen + wire.HeaderLen
)

// MinSize returns the smallest frame Spec.Size may give: the outer headers
// and one byte of inner frame.
func MinSize(ipv6 bool) int {
	if ipv6 {
		return outer6 + 1
	}
	return outer4 + 1
}

// MinFullSize returns the smallest frame that carries a whole inner POOL
// header.
func MinFullSize(ipv6 bool) int { return MinSize(ipv6) - 1 + wire.HeaderLen }

// Builder builds and restamps the frames of one Spec. It keeps scratch
// space and sequence numbers, so it belongs to one goroutine.
//
// With a key, one sequence numbers the frames of every session: a hop's
// seq belongs to its key, not to a session, because the GMAC nonce is the
// header's first 12 bytes (ending with the seq) and must never repeat
// under a key, and a relay keeps one replay window per key. Without a key,
// each session counts its own frames from 1.
type Builder struct {
	spec    Spec
	key     *hopmac.Key
	inner   []byte // the inner frame of session 0; Frame patches the session
	poolOff int    // offset of the outer POOL header in a frame
	res     wire.Result
	seqs    []uint64 // the last seq used per session; with a key, seqs[0] for all
	seqBuf  [8]byte
}

// NewBuilder checks s and returns a Builder for it.
func NewBuilder(s Spec) (*Builder, error) {
	if s.DstPort == 0 {
		s.DstPort = wire.RelayPort
	}
	if !s.SrcIP.IsValid() || s.SrcIP.Is6() != s.DstIP.Is6() || s.SrcIP.Is4In6() || s.DstIP.Is4In6() {
		return nil, ErrAddrs
	}
	v6 := s.SrcIP.Is6()
	if s.Size < MinSize(v6) || s.Size > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, want %d to %d", ErrSize, s.Size, MinSize(v6), MaxSize)
	}
	if s.Sessions < 1 || s.Sessions > MaxSessions {
		return nil, fmt.Errorf("%w: %d, want 1 to %d", ErrSessions, s.Sessions, MaxSessions)
	}
	b := &Builder{spec: s, seqs: make([]uint64, s.Sessions), poolOff: outer4 - wire.HeaderLen}
	for i := range b.seqs {
		b.seqs[i] = s.FirstSeq
	}
	if v6 {
		b.poolOff = outer6 - wire.HeaderLen
	}
	if s.Key != nil {
		if len(s.Key) != hopmac.KeySize {
			return nil, ErrKey
		}
		b.key = hopmac.New(s.Key)
	}
	// The inner frame: a whole POOL DATA frame whose payload is a byte
	// pattern, cut to what the frame size leaves.
	innerLen := s.Size - b.poolOff - wire.HeaderLen
	full := make([]byte, max(innerLen, wire.HeaderLen))
	payload := full[wire.HeaderLen:]
	for i := range payload {
		payload[i] = byte(i)
	}
	f := wire.Fields{Type: wire.TypeData, Seq: 1, Session: EndSession(0)}
	wire.Header(full).Put(&f, uint16(len(payload)))
	b.inner = full[:innerLen]
	// One frame classified once gives the offsets every frame of the Spec
	// shares, for the checksum patches of Frame and Restamp.
	buf := make([]byte, s.Size)
	spec := b.frameSpec(0)
	if _, err := wire.Build(buf, &spec); err != nil {
		return nil, fmt.Errorf("traffic: %w", err)
	}
	wire.Classify(buf, wire.NewMatcher(s.DstPort), &b.res)
	if b.res.Drop != wire.DropNone || !b.res.Kind.IsUDP() || int(b.res.PoolOff) != b.poolOff {
		return nil, fmt.Errorf("traffic: built frame does not classify as POOL over UDP: %v", b.res.Drop)
	}
	return b, nil
}

// frameSpec returns the FrameSpec of session's frames, with seq zero.
func (b *Builder) frameSpec(session int) wire.FrameSpec {
	s := &b.spec
	return wire.FrameSpec{
		Dst: s.Dst, Src: s.Src, SrcIP: s.SrcIP, DstIP: s.DstIP,
		SrcPort: s.SrcPort, DstPort: s.DstPort,
		Pool:    wire.Fields{Type: wire.TypeData, Session: HopSession(session)},
		Payload: b.inner,
	}
}

// Spec returns the Builder's Spec, with defaults applied.
func (b *Builder) Spec() Spec { return b.spec }

// Signed reports whether frames carry hop MACs.
func (b *Builder) Signed() bool { return b.key != nil }

// PoolOffset returns the offset of the outer POOL header in every frame.
func (b *Builder) PoolOffset() int { return b.poolOff }

// Frame builds session's next frame into buf (at least Spec.Size bytes)
// with the session's next seq and, with a key, its hop MAC, and returns its
// length. It allocates nothing.
func (b *Builder) Frame(buf []byte, session int) (int, error) {
	if session < 0 || session >= len(b.seqs) {
		return 0, fmt.Errorf("%w: session %d of %d", ErrSessions, session, len(b.seqs))
	}
	spec := b.frameSpec(session)
	n, err := wire.Build(buf, &spec)
	if err != nil {
		return 0, fmt.Errorf("traffic: %w", err)
	}
	if err := b.Stamp(buf[:n], session); err != nil {
		return 0, err
	}
	return n, nil
}

// Stamp turns frame, a frame this Builder built (Spec.Size bytes, for any
// session, its layout unchanged since), into session's next frame: it
// writes the hop session id, the inner session id (when the inner frame
// reaches it), the next seq (the session's, or with a key the key's: see
// Builder) and, with a key, a fresh hop MAC,
// patching the UDP checksum for each change. It allocates nothing: this is
// the per-frame work of a generator that reuses its frames. It returns
// ErrNotOurs for a frame of another size and ErrSessions for a session out
// of range.
func (b *Builder) Stamp(frame []byte, session int) error {
	if len(frame) != b.spec.Size {
		return ErrNotOurs
	}
	if session < 0 || session >= len(b.seqs) {
		return fmt.Errorf("%w: session %d of %d", ErrSessions, session, len(b.seqs))
	}
	// Session ids are patched only when they change: a generator cycling
	// through sessions changes them on every frame, one replaying a
	// session's frames never.
	if off := b.poolOff + 20; wire.SessionID(frame[off:off+16]) != HopSession(session) {
		id := HopSession(session)
		wire.PatchUDP(frame, &b.res, off, id[:])
	}
	if off := b.poolOff + wire.HeaderLen + 20; off+16 <= len(frame) && wire.SessionID(frame[off:off+16]) != EndSession(session) {
		id := EndSession(session)
		wire.PatchUDP(frame, &b.res, off, id[:])
	}
	i := session
	if b.key != nil {
		i = 0 // the key's seq: see Builder
	}
	b.seqs[i]++
	binary.BigEndian.PutUint64(b.seqBuf[:], b.seqs[i])
	wire.PatchUDP(frame, &b.res, b.poolOff+4, b.seqBuf[:])
	if b.key != nil {
		b.sign(frame)
	}
	return nil
}

// Restamp is Stamp for the session frame already belongs to, which it
// returns; ErrNotOurs for a frame whose hop session is not one of this
// Builder's.
func (b *Builder) Restamp(frame []byte) (int, error) {
	if len(frame) != b.spec.Size {
		return 0, ErrNotOurs
	}
	i, ok := SessionIndex(wire.SessionID(frame[b.poolOff+20 : b.poolOff+36]))
	if !ok || i >= len(b.seqs) {
		return 0, ErrNotOurs
	}
	return i, b.Stamp(frame, i)
}

// sign writes the hop MAC of frame's POOL part and patches the UDP
// checksum for the MAC field's change.
func (b *Builder) sign(frame []byte) {
	var p wire.UDPPatch
	p.Begin(frame, &b.res, b.poolOff+hopmac.MACOffset, hopmac.MACSize)
	b.key.Sign(frame[b.poolOff : b.poolOff+wire.HeaderLen+len(b.inner)])
	p.End(frame)
}
