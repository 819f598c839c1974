package handshake

import (
	"bytes"
	"errors"
	"testing"
)

func sessions(t *testing.T) (*fixture, *Session, *Session) {
	f := newFixture(t)
	c, s, _ := f.handshake(f.initiator())
	return f, c, s
}

func handle(t *testing.T, s *Session, msg []byte, want Event) []byte {
	t.Helper()
	out, ev, err := s.Handle(nil, msg)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if ev != want {
		t.Fatalf("event %b, want %b", ev, want)
	}
	return out
}

func TestRekey(t *testing.T) {
	f, client, server := sessions(t)
	gen0 := client.Current()
	req, err := client.Rekey(nil)
	if err != nil {
		t.Fatal(err)
	}
	reply := handle(t, server, req, EventRekeyAnswered)
	next, ok := server.Next()
	if !ok || next.Generation != 1 || server.Current().Generation != 0 {
		t.Fatal("server should receive under generation 1 and still send under 0")
	}
	handle(t, client, reply, EventRekeyed)
	if client.Current().Generation != 1 {
		t.Fatal("client did not switch")
	}
	if prev, ok := client.Previous(); !ok || prev != gen0 {
		t.Fatal("client dropped generation 0 at once")
	}
	checkMirrored(t, client.Current(), next)
	if client.Current().HopSend == gen0.HopSend || client.Current().DataRecv == gen0.DataRecv {
		t.Fatal("rekey did not change the keys")
	}
	if client.ChannelBinding() == server.ChannelBinding() {
		t.Fatal("server switched its send generation before confirmation")
	}
	// The data plane saw a frame under the new key: the server confirms.
	if !server.Confirm() || server.Current().Generation != 1 || server.Confirm() {
		t.Fatal("Confirm")
	}
	checkMirrored(t, client.Current(), server.Current())
	if client.ID() != server.ID() || client.ChannelBinding() != server.ChannelBinding() {
		t.Fatal("ends disagree after rekey")
	}
	// A second rekey works the same way, then the grace period ends.
	req, _ = client.Rekey(nil)
	reply = handle(t, server, req, EventRekeyAnswered)
	handle(t, client, reply, EventRekeyed)
	f.clock.Advance(RekeyGrace)
	if _, ok := client.Previous(); ok {
		t.Fatal("previous generation outlived the grace period")
	}
}

// The peer confirms a rekey by sending under the new generation.
func TestRekeyConfirmedByControl(t *testing.T) {
	_, client, server := sessions(t)
	req, _ := client.Rekey(nil)
	reply := handle(t, server, req, EventRekeyAnswered)
	handle(t, client, reply, EventRekeyed)
	cl, err := client.Close(nil, 9)
	if err != nil {
		t.Fatal(err)
	}
	handle(t, server, cl, EventConfirmed|EventClosed)
	if closed, reason := server.Closed(); !closed || reason != 9 {
		t.Fatalf("closed %v reason %d", closed, reason)
	}
}

func TestRekeyCollision(t *testing.T) {
	_, client, server := sessions(t)
	creq, _ := client.Rekey(nil)
	sreq, _ := server.Rekey(nil)
	// The client (handshake initiator) ignores the server's request...
	if _, _, err := client.Handle(nil, sreq); !errors.Is(err, ErrCollision) {
		t.Fatalf("client: %v, want ErrCollision", err)
	}
	// ...and the server abandons its own and answers the client's.
	reply := handle(t, server, creq, EventRekeyAnswered)
	handle(t, client, reply, EventRekeyed)
	if !server.Confirm() {
		t.Fatal("server has no next generation")
	}
	checkMirrored(t, client.Current(), server.Current())
}

// A lost request is retried; only the reply to the latest request counts,
// and an older request arriving late is ignored.
func TestRekeyRetry(t *testing.T) {
	_, client, server := sessions(t)
	req1, _ := client.Rekey(nil)
	reply1 := handle(t, server, req1, EventRekeyAnswered) // reply1 is "lost"
	req2, _ := client.Rekey(nil)
	reply2 := handle(t, server, req2, EventRekeyAnswered)
	if _, _, err := server.Handle(nil, req1); !errors.Is(err, ErrReplay) {
		t.Fatalf("request replayed: %v", err)
	}
	if _, _, err := client.Handle(nil, reply1); !errors.Is(err, ErrAuth) {
		t.Fatalf("reply to the abandoned request: %v, want ErrAuth", err)
	}
	handle(t, client, reply2, EventRekeyed)
	server.Confirm()
	checkMirrored(t, client.Current(), server.Current())
	// Reordering: req3 overtaken by req4; req3 arriving last is stale.
	req3, _ := client.Rekey(nil)
	req4, _ := client.Rekey(nil)
	reply4 := handle(t, server, req4, EventRekeyAnswered)
	if _, _, err := server.Handle(nil, req3); !errors.Is(err, ErrReplay) {
		t.Fatalf("overtaken request: %v, want ErrReplay", err)
	}
	handle(t, client, reply4, EventRekeyed)
	server.Confirm()
	checkMirrored(t, client.Current(), server.Current())
}

func TestControlRejects(t *testing.T) {
	f, client, server := sessions(t)
	cl, _ := client.Close(nil, 1)
	// Another session between the same two identities.
	_, other, _ := f.handshake(f.initiator(func(c *InitiatorConfig) { c.Rand = newRand("other") }))
	foreign, _ := other.Close(nil, 1)
	cases := []struct {
		name string
		msg  []byte
		want error
	}{
		{"truncated", cl[:len(cl)-1], ErrTruncated},
		{"empty", nil, ErrTruncated},
		{"version", flip(cl, 0), ErrVersion},
		{"kind", withByte(cl, 1, 9), ErrMalformed},
		{"kind of the other length", withByte(cl, 1, byte(KindRekey)), ErrTruncated},
		{"reserved", flip(cl, 2), ErrMalformed},
		{"unknown generation", flip(cl, 7), ErrGeneration},
		{"forged body", flip(cl, controlHeader), ErrAuth},
		{"forged tag", flip(cl, len(cl)-1), ErrAuth},
		{"forged seq", flip(cl, 15), ErrAuth},
		{"other session", foreign, ErrAuth},
	}
	for _, tc := range cases {
		if _, _, err := server.Handle(nil, tc.msg); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// None of the forgeries moved the window or closed the session.
	handle(t, server, cl, EventClosed)
	if _, _, err := server.Handle(nil, cl); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
	if _, err := client.Close(nil, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
	if _, err := client.Rekey(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("rekey after close: %v", err)
	}
}

func TestControlReplayAndExpiry(t *testing.T) {
	f, client, server := sessions(t)
	req, _ := client.Rekey(nil)
	reply := handle(t, server, req, EventRekeyAnswered)
	if _, _, err := server.Handle(nil, req); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed request: %v", err)
	}
	handle(t, client, reply, EventRekeyed)
	if _, _, err := client.Handle(nil, reply); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed reply: %v", err)
	}
	// A generation-0 message from the server is accepted during the grace
	// period (it has not confirmed yet), refused after.
	if _, err := server.Rekey(nil); !errors.Is(err, ErrState) {
		t.Fatalf("Rekey with a pending next generation: %v", err)
	}
	late, _ := server.Close(nil, 2) // under generation 0
	f.clock.Advance(RekeyGrace)
	if _, _, err := client.Handle(nil, late); !errors.Is(err, ErrGeneration) {
		t.Fatalf("message under an expired generation: %v", err)
	}
}

func TestRekeyDue(t *testing.T) {
	f, client, server := sessions(t)
	if client.RekeyDue(0) || server.RekeyDue(0) {
		t.Fatal("due at start")
	}
	if !client.RekeyDue(RekeyAfterFrames) || !server.RekeyDue(RekeyAfterFrames) {
		t.Fatal("not due after the frame limit")
	}
	f.clock.Advance(RekeyAfterTime)
	if !client.RekeyDue(0) {
		t.Fatal("client not due after an hour")
	}
	if server.RekeyDue(0) {
		t.Fatal("server due as early as the client: collisions")
	}
	f.clock.Advance(responderRekeySlack)
	if !server.RekeyDue(0) {
		t.Fatal("server never due")
	}
	req, _ := client.Rekey(nil)
	if !client.RekeyPending() {
		t.Fatal("rekey not pending")
	}
	if client.RekeyDue(RekeyAfterFrames) {
		t.Fatal("due again while a rekey is in flight")
	}
	handle(t, client, handle(t, server, req, EventRekeyAnswered), EventRekeyed)
	if client.RekeyDue(0) {
		t.Fatal("due right after a rekey")
	}
}

func TestMessageRoundTrips(t *testing.T) {
	f := newFixture(t)
	tr := f.toResponse(f.initiator(), clientAddr)
	ack, _, err := f.resp.Accept(nil, tr.response, clientAddr)
	if err != nil {
		t.Fatal(err)
	}
	i, _ := ParseInit(tr.init)
	c, _ := ParseChallenge(tr.challenge)
	r, _ := ParseResponse(tr.response)
	a, _ := ParseAck(ack)
	for name, m := range map[string]interface{ AppendBinary([]byte) ([]byte, error) }{
		"init": &i, "challenge": &c, "response": &r, "ack": &a,
	} {
		out, err := m.AppendBinary(nil)
		want := map[string][]byte{"init": tr.init, "challenge": tr.challenge, "response": tr.response, "ack": ack}[name]
		if err != nil || !bytes.Equal(out, want) {
			t.Errorf("%s does not round-trip: %v", name, err)
		}
	}
	if len(tr.response) != ResponseMinSize+len("client terms") || len(ack) != AckMinSize+len("server terms") {
		t.Fatalf("sizes: RESPONSE %d, ACK %d", len(tr.response), len(ack))
	}
	big := make([]byte, ResponseMinSize+MaxPayload+1)
	copy(big, tr.response)
	if _, err := ParseResponse(big); !errors.Is(err, ErrMalformed) {
		t.Fatalf("oversized RESPONSE: %v", err)
	}
}

func withByte(b []byte, i int, v byte) []byte {
	c := bytes.Clone(b)
	c[i] = v
	return c
}
