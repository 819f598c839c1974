package handshake

import (
	"bytes"
	"testing"
)

// Every decoder of untrusted bytes is fuzzed: it must return an error, not
// panic, on bad input, and whatever it accepts must re-encode to the same
// bytes (one encoding per message).

func seedMessages(f *testing.F) transcript {
	fx := newFixture(f)
	_, _, tr := fx.handshake(fx.initiator())
	return tr
}

func FuzzParseInit(f *testing.F) {
	tr := seedMessages(f)
	f.Add(tr.init)
	f.Add(tr.challenge)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseInit(b)
		if err != nil {
			return
		}
		if out, _ := m.AppendBinary(nil); !bytes.Equal(out, b) {
			t.Fatal("INIT does not round-trip")
		}
	})
}

func FuzzParseChallenge(f *testing.F) {
	tr := seedMessages(f)
	f.Add(tr.challenge)
	f.Add(tr.init)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseChallenge(b)
		if err != nil {
			return
		}
		if out, _ := m.AppendBinary(nil); !bytes.Equal(out, b) {
			t.Fatal("CHALLENGE does not round-trip")
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	tr := seedMessages(f)
	f.Add(tr.response)
	f.Add(tr.response[:ResponseMinSize])
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseResponse(b)
		if err != nil {
			return
		}
		if out, err := m.AppendBinary(nil); err != nil || !bytes.Equal(out, b) {
			t.Fatalf("RESPONSE does not round-trip: %v", err)
		}
	})
}

func FuzzParseAck(f *testing.F) {
	tr := seedMessages(f)
	f.Add(tr.ack)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseAck(b)
		if err != nil {
			return
		}
		if out, err := m.AppendBinary(nil); err != nil || !bytes.Equal(out, b) {
			t.Fatalf("ACK does not round-trip: %v", err)
		}
	})
}

func FuzzParseControl(f *testing.F) {
	_, c, _ := sessionsF(f)
	req, _ := c.Rekey(nil)
	cl, _ := c.Close(nil, 1)
	f.Add(req)
	f.Add(cl)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseControl(b)
		if err != nil {
			return
		}
		if controlHeader+len(m.Sealed) != len(b) || (m.Kind != KindRekey && m.Kind != KindClose) {
			t.Fatal("control envelope fields inconsistent with its length")
		}
		if _, err := parseRekeyBody(m.Sealed); err == nil && len(m.Sealed) != rekeyBodySize {
			t.Fatal("rekey body of the wrong length parsed")
		}
	})
}

func sessionsF(tb testing.TB) (*fixture, *Session, *Session) {
	fx := newFixture(tb)
	c, s, _ := fx.handshake(fx.initiator())
	return fx, c, s
}

// FuzzChallenge: the stateless path, on anything.
func FuzzChallenge(f *testing.F) {
	tr := seedMessages(f)
	fx := newFixture(f)
	f.Add(tr.init)
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := fx.resp.Challenge(nil, b, clientAddr)
		if err != nil {
			return
		}
		if len(out) != ChallengeSize {
			t.Fatalf("CHALLENGE of %d bytes", len(out))
		}
		if _, err := ParseInit(b); err != nil {
			t.Fatal("answered something that is not an INIT")
		}
	})
}

// FuzzAccept: only the genuine RESPONSE is ever accepted, and only once.
func FuzzAccept(f *testing.F) {
	fx := newFixture(f)
	tr := fx.toResponse(fx.initiator(), clientAddr)
	f.Add(tr.response)
	f.Add(tr.response[:ResponseMinSize])
	f.Fuzz(func(t *testing.T, b []byte) {
		_, s, err := fx.resp.Accept(nil, b, clientAddr)
		if err != nil {
			return
		}
		if !bytes.Equal(b, tr.response) {
			t.Fatalf("accepted a RESPONSE that is not the genuine one: %x", b)
		}
		if s.Peer() != fx.client.PublicKey() {
			t.Fatal("wrong peer")
		}
	})
}

// FuzzRespond: a client only answers a CHALLENGE for its INIT signed by the
// expected server.
func FuzzRespond(f *testing.F) {
	tr := seedMessages(f)
	f.Add(tr.challenge)
	f.Fuzz(func(t *testing.T, b []byte) {
		fx := newFixture(t)
		c := fx.initiator(func(c *InitiatorConfig) { c.MaxDifficulty = 4 })
		if _, err := c.Respond(nil, b); err != nil {
			return
		}
		m, _ := ParseChallenge(b)
		if m.Server.Identity != fx.server.PublicKey() || m.Server.Verify() != nil || m.Ephemeral != c.ephPub {
			t.Fatal("answered a CHALLENGE that should have been refused")
		}
	})
}

// FuzzFinish: only the genuine ACK completes the handshake, and forgeries
// before it do not prevent that.
func FuzzFinish(f *testing.F) {
	tr := seedMessages(f)
	f.Add(tr.ack)
	f.Fuzz(func(t *testing.T, b []byte) {
		fx := newFixture(t)
		c := fx.initiator()
		tr := fx.toResponse(c, clientAddr)
		ack, _, err := fx.resp.Accept(nil, tr.response, clientAddr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Finish(b); err == nil {
			if !bytes.Equal(b, ack) {
				t.Fatal("accepted a forged ACK")
			}
			return
		}
		if _, err := c.Finish(ack); err != nil {
			t.Fatalf("genuine ACK refused after a rejected one: %v", err)
		}
	})
}

// FuzzHandle: control messages on an established session.
func FuzzHandle(f *testing.F) {
	_, client, server := sessionsF(f)
	req, _ := client.Rekey(nil)
	cl, _ := client.Close(nil, 1)
	f.Add(req)
	f.Add(cl)
	f.Fuzz(func(t *testing.T, b []byte) {
		if closed, _ := server.Closed(); closed {
			_, _, server = sessionsF(t)
		}
		out, _, err := server.Handle(nil, b)
		if err != nil && len(out) != 0 {
			t.Fatal("output with an error")
		}
	})
}
