package proto

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/poolrelay/poolrelay/crypto/handshake"
	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane/wire"
)

// prefixLen is the clear prefix of a sealed payload: version, kind,
// reserved (2), key generation (4).
const prefixLen = 8

const tagLen = chacha20poly1305.Overhead

// controlInfo labels the relay-control key in HKDF; see the package doc.
const controlInfo = "poolrelay/v1 relay-control"

// DefaultMaxSkew is how far a sealed message's timestamp may be from the
// receiver's clock. Heartbeats come every few seconds and NTP keeps relays
// within milliseconds; 30 s tolerates a slow path and a sloppy clock while
// a delayed message cannot be delivered minutes later.
const DefaultMaxSkew = 30 * time.Second

// generation holds one key generation's control ciphers and replay window.
type generation struct {
	n          uint32
	send, recv cipher.AEAD
	window     hopmac.Window
}

// Channel seals and opens the relay-control messages of one session. It
// follows the session's key generations (rekey) by itself. Like the session,
// it is owned by one goroutine.
type Channel struct {
	sess    *handshake.Session
	id      [16]byte
	maxSkew time.Duration
	// seq is the last sequence number sent; it is not reset by a rekey,
	// which keeps nonces unique even if two generations' keys collided.
	seq uint64
	// gens caches the generations in use: current, next, previous.
	gens    [3]*generation
	scratch []byte
	// nonce is here rather than on the stack: passed to an AEAD through an
	// interface it would escape, one allocation per message.
	nonce [chacha20poly1305.NonceSize]byte
}

// NewChannel returns the control channel of an established session.
// maxSkew bounds the timestamps it accepts; 0 means DefaultMaxSkew.
func NewChannel(s *handshake.Session, maxSkew time.Duration) *Channel {
	if maxSkew <= 0 {
		maxSkew = DefaultMaxSkew
	}
	return &Channel{sess: s, id: s.ID(), maxSkew: maxSkew, scratch: make([]byte, 0, MaxFrame)}
}

// Session returns the session the channel belongs to.
func (c *Channel) Session() *handshake.Session { return c.sess }

// Seal appends a POOL frame carrying body as a message of kind k, sealed
// under the session's current generation and stamped with now.
func (c *Channel) Seal(dst []byte, k Kind, body []byte, now time.Time) []byte {
	if len(body) > maxBody {
		panic("proto: body too large")
	}
	g := c.gen(c.sess.Current())
	c.seq++
	t := wire.TypeData
	if k == KindHeartbeat {
		t = wire.TypeHeartbeat
	}
	start := len(dst)
	payloadLen := prefixLen + len(body)
	dst = append(dst, make([]byte, wire.HeaderLen+prefixLen)...)
	h := wire.Header(dst[start : start+wire.HeaderLen])
	h.Put(&wire.Fields{
		Type: t, Flags: wire.FlagEncrypted, Seq: c.seq, Session: wire.SessionID(c.id),
		Timestamp: uint64(now.UnixNano()), Channel: ChannelControl,
	}, uint16(payloadLen))
	p := dst[start+wire.HeaderLen:]
	p[0], p[1] = Version, byte(k)
	binary.BigEndian.PutUint32(p[4:8], g.n)
	ad := dst[start : start+wire.HeaderLen+prefixLen]
	binary.BigEndian.PutUint64(c.nonce[4:], c.seq)
	// Seal into the tail, then move the tag into the header's MAC field.
	dst = g.send.Seal(dst, c.nonce[:], body, ad)
	tag := dst[len(dst)-tagLen:]
	copy(wire.Header(dst[start:]).MACBytes(), tag)
	return dst[:len(dst)-tagLen]
}

// Message is an opened control message.
type Message struct {
	Kind Kind
	// Body is the plaintext; it is valid until the next call to Open.
	Body []byte
	// Generation is the key generation the message was sealed under: the
	// session's Next generation means the peer switched to it, and the
	// caller confirms it (handshake.Session.Confirm).
	Generation uint32
}

// Open authenticates a sealed control frame received on this session and
// returns the message. It checks,
// cheapest first: form, session, version, generation, timestamp, replay
// window, then the tag; the window records the seq only once the tag is good,
// so forged frames cannot move it.
func (c *Channel) Open(frame []byte, now time.Time) (Message, error) {
	f, err := ParseFrame(frame)
	if err != nil {
		return Message{}, err
	}
	if f.Session() != c.id {
		return Message{}, ErrSession
	}
	if len(f.Payload) < prefixLen {
		return Message{}, ErrTruncated
	}
	p := f.Payload
	if p[0] != Version {
		return Message{}, ErrVersion
	}
	k := Kind(p[1])
	if !k.sealed() || p[2] != 0 || p[3] != 0 || !f.Header.Flags().Has(wire.FlagEncrypted) {
		return Message{}, ErrMalformed
	}
	if (k == KindHeartbeat) != (f.Type() == wire.TypeHeartbeat) || (k != KindHeartbeat && f.Type() != wire.TypeData) {
		return Message{}, ErrMalformed
	}
	mac := f.Header.MACBytes()
	for _, b := range mac[tagLen:] {
		if b != 0 {
			return Message{}, ErrMalformed
		}
	}
	g := c.lookup(binary.BigEndian.Uint32(p[4:8]))
	if g == nil {
		return Message{}, ErrGeneration
	}
	ts := int64(f.Header.Timestamp())
	if d := now.UnixNano() - ts; ts < 0 || d > int64(c.maxSkew) || -d > int64(c.maxSkew) {
		return Message{}, ErrStale
	}
	seq := f.Header.Seq()
	if !g.window.Check(seq) {
		return Message{}, ErrReplay
	}
	// Additional data: the header with its MAC field zeroed, then the prefix.
	ad := append(c.scratch[:0], frame[:wire.HeaderLen+prefixLen]...)
	clear(wire.Header(ad).MACBytes())
	ct := append(ad[len(ad):], p[prefixLen:]...)
	ct = append(ct, mac[:tagLen]...)
	binary.BigEndian.PutUint64(c.nonce[4:], seq)
	body, err := g.recv.Open(ct[:0], c.nonce[:], ct, ad)
	if err != nil {
		return Message{}, ErrAuth
	}
	g.window.Accept(seq)
	return Message{Kind: k, Body: body, Generation: g.n}, nil
}

// lookup finds the generation n among those the session holds now.
func (c *Channel) lookup(n uint32) *generation {
	if k := c.sess.Current(); k.Generation == n {
		return c.gen(k)
	}
	if k, ok := c.sess.Next(); ok && k.Generation == n {
		return c.gen(k)
	}
	if k, ok := c.sess.Previous(); ok && k.Generation == n {
		return c.gen(k)
	}
	return nil
}

// gen returns the cached ciphers of k's generation, deriving them on first
// use and evicting the oldest generation (at most three are live at once).
func (c *Channel) gen(k handshake.Keys) *generation {
	oldest := 0
	for i, g := range c.gens {
		if g != nil && g.n == k.Generation {
			return g
		}
		if g == nil || (c.gens[oldest] != nil && g.n < c.gens[oldest].n) {
			oldest = i
		}
	}
	g := c.derive(k.Generation, k.DataSend, k.DataRecv)
	c.gens[oldest] = g
	return g
}

// derive builds a generation's ciphers. It takes the keys by value, apart
// from gen, so that only a cache miss moves them to the heap.
func (c *Channel) derive(n uint32, send, recv [32]byte) *generation {
	return &generation{n: n, send: c.aead(&send), recv: c.aead(&recv)}
}

func (c *Channel) aead(secret *[32]byte) cipher.AEAD {
	key, err := hkdf.Key(sha256.New, secret[:], c.id[:], controlInfo, chacha20poly1305.KeySize)
	if err != nil {
		panic("proto: hkdf: " + err.Error()) // cannot fail for a 32-byte output
	}
	a, err := chacha20poly1305.New(key)
	if err != nil {
		panic("proto: " + err.Error())
	}
	return a
}
