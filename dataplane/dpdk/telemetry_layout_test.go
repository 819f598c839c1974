package dpdk

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// These tests need no DPDK: the name rules and the reply layout. The
// telemetry tests in telemetry_test.go check the same against the library.

func TestCheckTelemetryCmd(t *testing.T) {
	fn := func(string, []TelemetryValue) ([]TelemetryValue, error) { return nil, nil }
	long := "/" + strings.Repeat("a", MaxTelemetryCmdLen-1)
	for _, c := range []struct {
		cmd, help string
		fn        TelemetryFunc
		ok        bool
	}{
		{"/poolrelay/ports", "Per-port counters", fn, true},
		{"/a_b/C9", "", fn, true},
		{long, strings.Repeat("h", MaxTelemetryHelpLen), fn, true},
		{long + "a", "", fn, false},
		{"/poolrelay/ports", strings.Repeat("h", MaxTelemetryHelpLen+1), fn, false},
		{"/poolrelay/ports", "nul\x00", fn, false},
		{"", "", fn, false},
		{"poolrelay", "", fn, false},
		{"/pool-relay", "", fn, false},
		{"/pool relay", "", fn, false},
		{"/poolrelay,x", "", fn, false},
		{"/pöol", "", fn, false},
		{"/", "", fn, false},
		{"/info", "", fn, false},
		{"/help", "", fn, false},
		{"/poolrelay/ports", "", nil, false},
	} {
		err := checkTelemetryCmd(c.cmd, c.help, c.fn)
		if c.ok != (err == nil) || err != nil && !errors.Is(err, ErrTelemetryName) {
			t.Errorf("checkTelemetryCmd(%q, %d-byte help) = %v, want ok %v", c.cmd, len(c.help), err, c.ok)
		}
	}
}

func TestSanitizeTelemetryName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"rx_packets", "rx_packets"},
		{"net-null.0", "net_null_0"},
		{"0000:03:00.0", "0000_03_00_0"},
		{"a/b", "a/b"},
		{"é", "__"},
		{"", ""},
		{strings.Repeat("x", 200), strings.Repeat("x", MaxTelemetryNameLen)},
	} {
		var buf [MaxTelemetryNameLen + 1]byte
		for i := range buf {
			buf[i] = 0xff
		}
		sanitizeTelemetryName(&buf, c.in)
		n := strings.IndexByte(string(buf[:]), 0)
		if n < 0 || string(buf[:n]) != c.want {
			t.Errorf("sanitize(%q) = %q, want %q NUL-terminated", c.in, buf[:max(n, 0)], c.want)
		}
	}
}

func TestDecimalDigits(t *testing.T) {
	for _, v := range []uint64{0, 9, 10, 99, 100, 12345, math.MaxUint32, math.MaxUint64 / 10, math.MaxUint64} {
		if got, want := decimalDigits(v), len(strconv.FormatUint(v, 10)); got != want {
			t.Errorf("decimalDigits(%d) = %d, want %d", v, got, want)
		}
	}
}

// dpdkJSON lays vals out with l and renders the result the way DPDK 22.11
// writes a dict reply: {"cmd":{"name":value,"group":{"name":value}}},
// members in the order they were added, the truncation count last.
func dpdkJSON(cmd string, l *telemetryLayout, vals []TelemetryValue) string {
	var top []string      // rendered top-level members; a group is a placeholder
	var groups [][]string // rendered members of each group
	var groupAt []int     // index in top of each group
	l.reset(cmd)
	for _, v := range vals {
		g, isNew, ok := l.place(v)
		if !ok {
			continue
		}
		m := jsonName(v.Name) + ":" + strconv.FormatUint(v.Value, 10)
		if g < 0 {
			top = append(top, m)
			continue
		}
		if isNew {
			groupAt = append(groupAt, len(top))
			top = append(top, "")
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], m)
	}
	for g, at := range groupAt {
		top[at] = jsonName(vals[firstOfGroup(vals, g, l)].Group) + ":{" + strings.Join(groups[g], ",") + "}"
	}
	if l.dropped > 0 {
		top = append(top, jsonName(TelemetryTruncatedKey)+":"+strconv.FormatUint(l.dropped, 10))
	}
	return `{"` + cmd + `":{` + strings.Join(top, ",") + `}}`
}

// firstOfGroup returns the index in vals of a value of group g.
func firstOfGroup(vals []TelemetryValue, g int, l *telemetryLayout) int {
	for i, v := range vals {
		if j, ok := l.index[v.Group]; ok && j == g && v.Group != "" {
			return i
		}
	}
	panic("no such group")
}

// jsonName is name as DPDK writes it: sanitized, quoted.
func jsonName(name string) string {
	var buf [MaxTelemetryNameLen + 1]byte
	sanitizeTelemetryName(&buf, name)
	return `"` + string(buf[:strings.IndexByte(string(buf[:]), 0)]) + `"`
}

// TestTelemetryLayoutFits checks, on random replies, that what the layout
// places fits in DPDK's output buffer (with the NUL snprintf needs) and its
// member limits, and that every value is either placed or counted.
func TestTelemetryLayoutFits(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var l telemetryLayout
	for round := 0; round < 300; round++ {
		n := r.IntN(3000)
		groups := 1 + r.IntN(400)
		vals := make([]TelemetryValue, n)
		for i := range vals {
			v := &vals[i]
			if r.IntN(3) > 0 {
				v.Group = "g" + strconv.Itoa(r.IntN(groups))
			}
			v.Name = strings.Repeat("n", r.IntN(140))
			v.Value = r.Uint64() >> r.IntN(64)
		}
		cmd := "/" + strings.Repeat("c", r.IntN(MaxTelemetryCmdLen))
		out := dpdkJSON(cmd, &l, vals)
		if len(out)+1 > telemetryMaxOutput {
			t.Fatalf("round %d: reply of %d bytes exceeds %d", round, len(out)+1, telemetryMaxOutput)
		}
		placed := 0
		for _, g := range l.groups {
			if g.members > telemetryMaxEntries {
				t.Fatalf("round %d: a group of %d members", round, g.members)
			}
			placed += g.members
		}
		top := l.members
		if l.dropped > 0 {
			top++
		}
		if top > telemetryMaxEntries {
			t.Fatalf("round %d: %d top-level members", round, top)
		}
		placed += l.members - len(l.groups)
		if placed+int(l.dropped) != n {
			t.Fatalf("round %d: %d placed + %d dropped != %d values", round, placed, l.dropped, n)
		}
	}
}

// A small reply is never truncated, and a reply that fills the buffer
// leaves little of it unused: the layout is not wastefully cautious.
func TestTelemetryLayoutTight(t *testing.T) {
	var l telemetryLayout
	vals := []TelemetryValue{{Name: "a", Value: 1}, {Group: "g", Name: "b", Value: 2}}
	if out := dpdkJSON("/x", &l, vals); out != `{"/x":{"a":1,"g":{"b":2}}}` || l.dropped != 0 {
		t.Fatalf("got %s, %d dropped", out, l.dropped)
	}
	vals = vals[:0]
	for i := 0; i < 100; i++ {
		for j := 0; j < 100; j++ {
			vals = append(vals, TelemetryValue{Group: fmt.Sprintf("group%03d", i), Name: fmt.Sprintf("name%03d", j), Value: math.MaxUint64})
		}
	}
	out := dpdkJSON("/x", &l, vals)
	if l.dropped == 0 || telemetryMaxOutput-len(out) > 2*telemetryTruncatedSz+64 {
		t.Fatalf("%d of %d bytes used, %d dropped", len(out), telemetryMaxOutput, l.dropped)
	}
}
