package poolhdr

import "testing"

// The fields tile the header: each starts where the one before ends, with
// the sizes of the POOL spec, and the MAC field ends the header.
func TestFieldsTile(t *testing.T) {
	fields := []struct {
		name      string
		off, size int
	}{
		{"version/type", VerType, 1}, {"reserved1", Reserved1, 1}, {"flags", Flags, 2},
		{"seq", Seq, 8}, {"ack", Ack, 8}, {"session", Session, SessionLen},
		{"timestamp", Timestamp, 8}, {"payload length", PayLen, 2}, {"channel", Channel, 1},
		{"reserved2", Reserved2, 1}, {"mac", MAC, MACLen},
	}
	at := 0
	for _, f := range fields {
		if f.off != at {
			t.Errorf("%s starts at %d, want %d", f.name, f.off, at)
		}
		at = f.off + f.size
	}
	if at != Len || Len != 80 || MACLen != 32 || SessionLen != 16 {
		t.Errorf("fields end at %d, Len %d, MACLen %d, SessionLen %d; want 80, 80, 32, 16", at, Len, MACLen, SessionLen)
	}
	// The hop MAC's nonce is the header's first 12 bytes, which end with seq.
	if Seq+8 != 12 {
		t.Errorf("seq ends at %d, want 12 (the end of the hop MAC's nonce)", Seq+8)
	}
}
