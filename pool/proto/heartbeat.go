package proto

import (
	"encoding/binary"
	"time"

	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/ledger/account"
	"github.com/poolrelay/poolrelay/ledger/journal"
)

// TagHeartbeat is the domain separation tag of heartbeat signatures.
const TagHeartbeat identity.Tag = "poolrelay/v1 heartbeat"

// HeartbeatSize is the size of a heartbeat body, signature included.
const HeartbeatSize = hbHead + journal.SignedHeadSize + identity.SignatureSize

const hbHead = 200

const maxBody = HeartbeatSize

// Telemetry is what a heartbeat reports about the link and its sender.
type Telemetry struct {
	RTT, Jitter time.Duration
	// LossPPM is the frame loss in parts per million.
	LossPPM uint32
	MTU     uint16
	// Throughput is in bits per second.
	Throughput uint64
	QueueDepth uint32
	RekeyCount uint32
	Uptime     time.Duration
	// ConfigVersion identifies the sender's configuration.
	ConfigVersion uint64
}

// Heartbeat is a signed statement by its sender about the link with the
// receiver (Subject): telemetry and the bilateral counters as the sender
// observed them, with a sequence number, and the sender's signed journal
// head. The signature covers the session id and every byte before it, so a
// heartbeat is evidence a third party can check.
//
//	off size
//	  0    8 time, Unix ns (the signer's clock)
//	  8    8 sequence (increases with every heartbeat of the sender)
//	 16   32 subject: Ed25519 key of the peer the counters are about
//	 48    8 RTT ns          56  8 jitter ns       64  4 loss ppm
//	 68    2 MTU             70  2 reserved, 0     72  8 throughput bit/s
//	 80    4 queue depth     84  4 rekey count     88  8 uptime ns
//	 96    8 config version
//	104    8 echo: the last heartbeat sequence received from the peer
//	112    8 echo delay: ns between receiving it and sending this one
//	120   72 counters (account.Counters canonical encoding)
//	192    1 1 if a journal head follows, 0 if the sender keeps none
//	193    7 reserved, 0
//	200  120 signed journal head (zero when absent)
//	320   64 Ed25519 signature under TagHeartbeat over
//	         session id || bytes 0..320
type Heartbeat struct {
	Time    time.Time
	Seq     uint64
	Subject identity.PublicKey
	Tel     Telemetry
	// EchoSeq and EchoDelay let the peer measure the round trip: the last
	// heartbeat sequence we received from it and how long we held it.
	EchoSeq   uint64
	EchoDelay time.Duration
	Counters  account.Counters
	// Head is the sender's signed journal head; HasHead false for an end
	// node without a journal.
	HasHead bool
	Head    journal.SignedHead
}

// AppendSigned appends the heartbeat body signed by id for session.
func (h *Heartbeat) AppendSigned(dst []byte, session [16]byte, id *identity.Identity) []byte {
	start := len(dst)
	be := binary.BigEndian
	dst = be.AppendUint64(dst, uint64(h.Time.UnixNano()))
	dst = be.AppendUint64(dst, h.Seq)
	dst = append(dst, h.Subject[:]...)
	dst = be.AppendUint64(dst, uint64(h.Tel.RTT))
	dst = be.AppendUint64(dst, uint64(h.Tel.Jitter))
	dst = be.AppendUint32(dst, h.Tel.LossPPM)
	dst = be.AppendUint16(dst, h.Tel.MTU)
	dst = append(dst, 0, 0)
	dst = be.AppendUint64(dst, h.Tel.Throughput)
	dst = be.AppendUint32(dst, h.Tel.QueueDepth)
	dst = be.AppendUint32(dst, h.Tel.RekeyCount)
	dst = be.AppendUint64(dst, uint64(h.Tel.Uptime))
	dst = be.AppendUint64(dst, h.Tel.ConfigVersion)
	dst = be.AppendUint64(dst, h.EchoSeq)
	dst = be.AppendUint64(dst, uint64(h.EchoDelay))
	dst = h.Counters.AppendCanonical(dst)
	if h.HasHead {
		dst = append(dst, 1, 0, 0, 0, 0, 0, 0, 0)
		dst, _ = h.Head.AppendBinary(dst)
	} else {
		dst = append(dst, make([]byte, 8+journal.SignedHeadSize)...)
	}
	sig := id.SignMessage(TagHeartbeat, signedPart(session, dst[start:]))
	return append(dst, sig...)
}

func signedPart(session [16]byte, body []byte) []byte {
	msg := make([]byte, 0, 16+len(body))
	return append(append(msg, session[:]...), body...)
}

// ParseHeartbeat decodes a heartbeat body from session and verifies its
// signature under signer. It does not judge sequence or freshness: the
// receiver does, against its own state and clock.
func ParseHeartbeat(b []byte, session [16]byte, signer identity.PublicKey) (Heartbeat, error) {
	if len(b) != HeartbeatSize {
		return Heartbeat{}, ErrTruncated
	}
	be := binary.BigEndian
	var h Heartbeat
	t := int64(be.Uint64(b[0:8]))
	h.Seq = be.Uint64(b[8:16])
	copy(h.Subject[:], b[16:48])
	h.Tel = Telemetry{
		RTT: time.Duration(be.Uint64(b[48:56])), Jitter: time.Duration(be.Uint64(b[56:64])),
		LossPPM: be.Uint32(b[64:68]), MTU: be.Uint16(b[68:70]), Throughput: be.Uint64(b[72:80]),
		QueueDepth: be.Uint32(b[80:84]), RekeyCount: be.Uint32(b[84:88]),
		Uptime: time.Duration(be.Uint64(b[88:96])), ConfigVersion: be.Uint64(b[96:104]),
	}
	h.EchoSeq, h.EchoDelay = be.Uint64(b[104:112]), time.Duration(be.Uint64(b[112:120]))
	if t < 0 || h.Tel.RTT < 0 || h.Tel.Jitter < 0 || h.Tel.Uptime < 0 || h.EchoDelay < 0 ||
		h.Tel.LossPPM > 1_000_000 || b[70]|b[71] != 0 {
		return Heartbeat{}, ErrMalformed
	}
	h.Time = time.Unix(0, t)
	h.Counters = decodeCounters(b[120:192])
	for _, v := range b[193:200] {
		if v != 0 {
			return Heartbeat{}, ErrMalformed
		}
	}
	head := b[hbHead : hbHead+journal.SignedHeadSize]
	switch b[192] {
	case 0:
		for _, v := range head {
			if v != 0 {
				return Heartbeat{}, ErrMalformed
			}
		}
	case 1:
		sh, err := journal.ParseSignedHead(head)
		if err != nil {
			return Heartbeat{}, ErrMalformed
		}
		h.HasHead, h.Head = true, sh
	default:
		return Heartbeat{}, ErrMalformed
	}
	body := b[:hbHead+journal.SignedHeadSize]
	if !identity.VerifyMessage(signer, TagHeartbeat, signedPart(session, body), b[len(body):]) {
		return Heartbeat{}, ErrSignature
	}
	return h, nil
}

func decodeCounters(b []byte) account.Counters {
	u := func(i int) uint64 { return binary.BigEndian.Uint64(b[8*i:]) }
	return account.Counters{
		Epoch:      u(0),
		RelayedFor: account.Traffic{Packets: u(1), Bytes: u(2)},
		RelayedBy:  account.Traffic{Packets: u(3), Bytes: u(4)},
		ControlIn:  account.Traffic{Packets: u(5), Bytes: u(6)},
		ControlOut: account.Traffic{Packets: u(7), Bytes: u(8)},
	}
}

// Link measures a link from the heartbeats exchanged on it: the round trip
// (from the peer's echo of our sequence and how long it held it), its
// jitter (RFC 3550's smoothed mean deviation) and the share of the peer's
// heartbeats that never arrived. One end of one session owns it.
type Link struct {
	// sent remembers when our recent heartbeats left, by sequence.
	sent [8]struct {
		seq uint64
		at  time.Time
	}
	lastSeq          uint64
	lastAt           time.Time
	first, received  uint64
	rtt, jitter      time.Duration
	haveRTT, started bool
}

// Sent records that our heartbeat seq left at at.
func (l *Link) Sent(seq uint64, at time.Time) {
	e := &l.sent[seq%uint64(len(l.sent))]
	e.seq, e.at = seq, at
}

// Echo is what our next heartbeat echoes back: the peer's last sequence
// and how long ago it arrived.
func (l *Link) Echo(now time.Time) (uint64, time.Duration) {
	if l.lastSeq == 0 {
		return 0, 0
	}
	return l.lastSeq, now.Sub(l.lastAt)
}

// Received updates the measures with an accepted heartbeat from the peer.
func (l *Link) Received(h *Heartbeat, now time.Time) {
	if !l.started {
		l.first, l.started = h.Seq, true
	}
	l.received++
	l.lastSeq, l.lastAt = h.Seq, now
	e := l.sent[h.EchoSeq%uint64(len(l.sent))]
	if h.EchoSeq == 0 || e.seq != h.EchoSeq {
		return
	}
	rtt := now.Sub(e.at) - h.EchoDelay
	if rtt < 0 {
		return
	}
	if l.haveRTT {
		d := rtt - l.rtt
		if d < 0 {
			d = -d
		}
		l.jitter += (d - l.jitter) / 16
	}
	l.rtt, l.haveRTT = rtt, true
}

// Telemetry fills t's RTT, jitter and loss from the measures.
func (l *Link) Telemetry(t *Telemetry) {
	t.RTT, t.Jitter = l.rtt, l.jitter
	if l.started {
		expected := l.lastSeq - l.first + 1
		if expected >= l.received {
			t.LossPPM = uint32((expected - l.received) * 1_000_000 / expected)
		}
	}
}
