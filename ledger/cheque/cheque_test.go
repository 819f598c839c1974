package cheque

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/poolrelay/poolrelay/ledger/peer"
)

// key derives a deterministic test key from a label.
func key(t testing.TB, label string) (ed25519.PrivateKey, peer.ID) {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, label)
	k := ed25519.NewKeyFromSeed(seed)
	id, err := peer.FromPublicKey(k.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return k, id
}

func sample(t testing.TB) (Signed, ed25519.PrivateKey, peer.ID, peer.ID) {
	t.Helper()
	ka, a := key(t, "alice")
	_, b := key(t, "bob")
	s, err := Sign(Cheque{Network: 7, Issuer: a, Beneficiary: b, Cumulative: 1000, Sequence: 3, Date: 1_700_000_000}, ka)
	if err != nil {
		t.Fatal(err)
	}
	return s, ka, a, b
}

func TestEncodingLayout(t *testing.T) {
	s, _, a, b := sample(t)
	raw, _ := s.MarshalBinary()
	if len(raw) != SignedSize || Size != 108 || SignedSize != 172 {
		t.Fatalf("sizes: %d %d %d", len(raw), Size, SignedSize)
	}
	if string(raw[:16]) != DomainTag || !bytes.Equal(raw[20:52], a[:]) || !bytes.Equal(raw[52:84], b[:]) {
		t.Fatalf("layout: %x", raw[:84])
	}
	if raw[16+3] != 7 || raw[84+7] != 0xe8 || raw[92+7] != 3 {
		t.Fatalf("integers not big-endian at their offsets: %x", raw[16:108])
	}
	got, err := Parse(raw)
	if err != nil || got != s {
		t.Fatalf("round trip: %v %+v", err, got)
	}
	if err := got.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestCheck(t *testing.T) {
	s, _, a, b := sample(t)
	_, mallory := key(t, "mallory")
	ok := Expect{Network: 7, Issuer: a, Beneficiary: b}
	if err := s.Check(ok); err != nil {
		t.Fatalf("valid cheque: %v", err)
	}
	for _, tc := range []struct {
		name string
		e    Expect
		want error
	}{
		{"wrong network", Expect{Network: 8, Issuer: a, Beneficiary: b}, ErrWrongNetwork},
		{"wrong issuer", Expect{Network: 7, Issuer: mallory, Beneficiary: b}, ErrWrongIssuer},
		{"wrong beneficiary", Expect{Network: 7, Issuer: a, Beneficiary: mallory}, ErrWrongBeneficiary},
	} {
		if err := s.Check(tc.e); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

// Every bit of the signed encoding and of the signature is covered: a
// flipped bit is either malformed or fails verification.
func TestForgedBitFlips(t *testing.T) {
	s, _, a, b := sample(t)
	raw, _ := s.MarshalBinary()
	for bit := 0; bit < len(raw)*8; bit++ {
		f := bytes.Clone(raw)
		f[bit/8] ^= 1 << (bit % 8)
		g, err := Parse(f)
		if err == nil {
			err = g.Check(Expect{Network: g.Network, Issuer: g.Issuer, Beneficiary: g.Beneficiary})
		}
		if err == nil {
			t.Fatalf("bit %d flipped: accepted", bit)
		}
		if err2 := g.Check(Expect{Network: 7, Issuer: a, Beneficiary: b}); err2 == nil {
			t.Fatalf("bit %d flipped: accepted by the intended receiver", bit)
		}
	}
}

// A cheque signed by someone else under the issuer's name fails.
func TestForgedSigner(t *testing.T) {
	_, a := key(t, "alice")
	km, _ := key(t, "mallory")
	_, b := key(t, "bob")
	c := Cheque{Network: 7, Issuer: a, Beneficiary: b, Cumulative: 5, Sequence: 1}
	if _, err := Sign(c, km); !errors.Is(err, ErrWrongIssuer) {
		t.Fatalf("Sign with another key: %v", err)
	}
	// Build the forgery by hand.
	msg, _ := c.MarshalBinary()
	f := Signed{Cheque: c}
	copy(f.Sig[:], ed25519.Sign(km, msg))
	if err := f.Check(Expect{Network: 7, Issuer: a, Beneficiary: b}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged: %v", err)
	}
}

func TestMalformed(t *testing.T) {
	s, _, a, _ := sample(t)
	raw, _ := s.MarshalBinary()
	cases := map[string][]byte{
		"short": raw[:SignedSize-1],
		"long":  append(bytes.Clone(raw), 0),
		"tag":   append([]byte("poolrelay-chq-v2"), raw[16:]...),
	}
	self := bytes.Clone(raw)
	copy(self[52:84], a[:]) // beneficiary = issuer
	cases["self"] = self
	zero := bytes.Clone(raw)
	clear(zero[84:92]) // cumulative 0
	cases["zero amount"] = zero
	seq0 := bytes.Clone(raw)
	clear(seq0[92:100])
	cases["sequence 0"] = seq0
	for name, b := range cases {
		if _, err := Parse(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestIncrease(t *testing.T) {
	last := Last{Cumulative: 100, Sequence: 4}
	for _, tc := range []struct {
		cum, seq uint64
		inc      uint64
		err      error
	}{
		{150, 5, 50, nil},
		{150, 9, 50, nil}, // gaps in sequence are fine: a lost cheque is superseded
		{150, 4, 0, ErrReplay},
		{90, 3, 0, ErrReplay},
		{100, 5, 0, ErrNotIncreasing},
		{99, 6, 0, ErrNotIncreasing},
	} {
		inc, err := Increase(last, &Cheque{Cumulative: tc.cum, Sequence: tc.seq})
		if inc != tc.inc || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("cum %d seq %d: %d %v, want %d %v", tc.cum, tc.seq, inc, err, tc.inc, tc.err)
		}
	}
}

func TestReason(t *testing.T) {
	if Reason(ErrReplay) != "replay" || Reason(errors.New("x")) != "other" {
		t.Fatal(Reason(ErrReplay))
	}
	_, err := Increase(Last{Cumulative: 5, Sequence: 1}, &Cheque{Cumulative: 5, Sequence: 2})
	if Reason(err) != "not_increasing" {
		t.Fatal(Reason(err))
	}
}

func TestSettlementRoundTrip(t *testing.T) {
	s, ka, a, b := sample(t)
	s2, err := Sign(Cheque{Network: 7, Issuer: a, Beneficiary: b, Cumulative: 2000, Sequence: 4, Date: 1_700_000_100}, ka)
	if err != nil {
		t.Fatal(err)
	}
	entries := []Entry{{Direction: Received, Peer: a, Signed: s}, {Direction: Issued, Peer: b, Signed: s2}}
	var buf bytes.Buffer
	if err := WriteJSONL(&buf, entries); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != 2 {
		t.Fatalf("%d lines:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), `"date":"2023-11-14T22:13:20Z"`) {
		t.Fatalf("date not RFC 3339 UTC:\n%s", buf.String())
	}
	got, err := ReadJSONL(bytes.NewReader(buf.Bytes()))
	if err != nil || len(got) != 2 || got[0] != entries[0] || got[1] != entries[1] {
		t.Fatalf("read back: %v %+v", err, got)
	}
	// A line whose fields disagree with its signed cheque is refused.
	tampered := strings.Replace(buf.String(), `"cumulative":1000`, `"cumulative":9000`, 1)
	if _, err := ReadJSONL(strings.NewReader(tampered)); err == nil {
		t.Fatal("tampered settlement line accepted")
	}
	var raw bytes.Buffer
	if err := WriteRaw(&raw, entries); err != nil || raw.Len() != 2*SignedSize {
		t.Fatalf("raw: %v %d", err, raw.Len())
	}
	if g, err := Parse(raw.Bytes()[SignedSize:]); err != nil || g != s2 {
		t.Fatalf("raw second cheque: %v", err)
	}
}

func TestParseVerifyNoAllocs(t *testing.T) {
	s, _, _, _ := sample(t)
	raw, _ := s.MarshalBinary()
	n := testing.AllocsPerRun(100, func() {
		g, err := Parse(raw)
		if err != nil || g.Verify() != nil {
			t.Fatal("bad")
		}
	})
	if n != 0 {
		t.Fatalf("Parse+Verify allocate %v times", n)
	}
}

func FuzzParse(f *testing.F) {
	s, _, _, _ := sample(f)
	raw, _ := s.MarshalBinary()
	f.Add(raw)
	f.Add(raw[:Size])
	f.Add([]byte{})
	r := rand.New(rand.NewPCG(1, 2))
	for range 8 {
		b := bytes.Clone(raw)
		b[r.IntN(len(b))] ^= byte(1 + r.IntN(255))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without sentinel: %v", err)
			}
			return
		}
		// Canonical: a decoded cheque re-encodes to exactly its input.
		out, _ := s.MarshalBinary()
		if !bytes.Equal(out, b) {
			t.Fatalf("not canonical:\n in %x\nout %x", b, out)
		}
		_ = s.Verify()
	})
}

func BenchmarkVerify(b *testing.B) {
	s, _, a, bb := sample(b)
	raw, _ := s.MarshalBinary()
	e := Expect{Network: 7, Issuer: a, Beneficiary: bb}
	b.ReportAllocs()
	for b.Loop() {
		g, err := Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		if err := g.Check(e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
}

func BenchmarkSign(b *testing.B) {
	s, ka, _, _ := sample(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Sign(s.Cheque, ka); err != nil {
			b.Fatal(err)
		}
	}
}
