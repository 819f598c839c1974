package pcapfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestWriterBytes checks the writer's bytes field by field against the
// format, independently of Parse.
func TestWriterBytes(t *testing.T) {
	var out bytes.Buffer
	w, err := NewWriter(&out, 4, LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1700000000, 123456789)
	if err := w.WriteFrame(ts, []byte{1, 2, 3, 4, 5, 6}, 0); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	want := le.AppendUint32(nil, 0xa1b2c3d4)
	want = le.AppendUint16(want, 2)
	want = le.AppendUint16(want, 4)
	want = le.AppendUint64(want, 0)
	want = le.AppendUint32(want, 4) // snaplen
	want = le.AppendUint32(want, 1) // Ethernet
	want = le.AppendUint32(want, 1700000000)
	want = le.AppendUint32(want, 123456) // microseconds
	want = le.AppendUint32(want, 4)      // captured: cut to the snap length
	want = le.AppendUint32(want, 6)      // on the wire
	want = append(want, 1, 2, 3, 4)
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("wrote\n% x\nwant\n% x", out.Bytes(), want)
	}
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pcap")
	frames := [][]byte{{0xaa}, bytes.Repeat([]byte{7}, 1500), {}, {1, 2, 3}}
	if err := WriteFile(path, frames, time.Unix(1704067200, 0), time.Microsecond); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(frames) {
		t.Fatalf("read %d frames, wrote %d", len(got), len(frames))
	}
	for i := range frames {
		if !bytes.Equal(got[i], frames[i]) {
			t.Fatalf("frame %d: read % x, wrote % x", i, got[i], frames[i])
		}
		if cap(got[i]) != len(got[i]) {
			t.Fatalf("frame %d: capacity %d runs past its end %d", i, cap(got[i]), len(got[i]))
		}
	}
}

// TestParseBigEndianNano reads a big-endian capture with nanosecond
// timestamps, as other writers make them.
func TestParseBigEndianNano(t *testing.T) {
	be := binary.BigEndian
	b := be.AppendUint32(nil, 0xa1b23c4d)
	b = be.AppendUint16(b, 2)
	b = be.AppendUint16(b, 4)
	b = be.AppendUint64(b, 0)
	b = be.AppendUint32(b, 65535)
	b = be.AppendUint32(b, 1)
	b = be.AppendUint32(b, 1)
	b = be.AppendUint32(b, 999999999)
	b = be.AppendUint32(b, 2)
	b = be.AppendUint32(b, 2)
	b = append(b, 9, 8)
	got, err := Parse(b)
	if err != nil || len(got) != 1 || !bytes.Equal(got[0], []byte{9, 8}) {
		t.Fatalf("Parse = %x, %v", got, err)
	}
}

func TestParseRejects(t *testing.T) {
	var good bytes.Buffer
	w, _ := NewWriter(&good, 65535, LinkTypeEthernet)
	w.WriteFrame(time.Unix(0, 0), []byte{1, 2, 3, 4}, 4)
	g := good.Bytes()
	for name, b := range map[string][]byte{
		"empty":            nil,
		"short header":     g[:23],
		"bad magic":        append([]byte{0, 0, 0, 0}, g[4:]...),
		"cut record hdr":   g[:24+8],
		"cut frame":        g[:len(g)-1],
		"trailing bytes":   append(bytes.Clone(g), 0),
		"huge record size": append(bytes.Clone(g[:24+8]), 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0),
	} {
		if _, err := Parse(b); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: Parse error %v, want ErrFormat", name, err)
		}
	}
}

// FuzzParse: any bytes give frames or ErrFormat, never a panic, and the
// frames lie within the input.
func FuzzParse(f *testing.F) {
	var good bytes.Buffer
	w, _ := NewWriter(&good, 65535, LinkTypeEthernet)
	w.WriteFrame(time.Unix(0, 0), []byte{1, 2, 3, 4}, 4)
	f.Add(good.Bytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		frames, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v is not ErrFormat", err)
			}
			return
		}
		total := 24
		for _, fr := range frames {
			total += 16 + len(fr)
		}
		if total != len(b) {
			t.Fatalf("frames and headers cover %d of %d bytes", total, len(b))
		}
	})
}
