package route

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// testID returns a distinct non-zero session id for each n.
func testID(n uint64) SessionID {
	var id SessionID
	binary.BigEndian.PutUint64(id[0:], n)
	binary.BigEndian.PutUint64(id[8:], ^n)
	return id
}

// testRoute returns a valid route whose fields all derive from n and version,
// so that a reader can tell a whole route from a torn one.
func testRoute(n uint64, version uint32) Route { return routeFor(uint32(n)*7919 + version) }

// routeFor builds a valid route with every field derived from v. Three in
// four are IPv4 and fit a slot; the others, IPv6 (v%4 == 1), are spilled.
func routeFor(v uint32) Route {
	r := Route{
		IngressPeer: v,
		IngressKey:  v ^ 0x5555,
		EgressKey:   v ^ 0xaaaa,
		EgressPeer:  ^v,
		EgressPort:  uint16(v),
		VLAN:        uint16(v % 4095),
		Encap:       EncapUDP,
		SrcPort:     uint16(v>>3) | 1,
		DstPort:     9254,
		Flags:       Flags(v) & knownFlags,
	}
	if v%7 == 3 {
		r.Encap, r.DstPort = EncapIP, 0
	}
	binary.BigEndian.PutUint32(r.DstMAC[2:], v)
	binary.BigEndian.PutUint32(r.SrcMAC[2:], ^v)
	var a4 [4]byte
	binary.BigEndian.PutUint32(a4[:], v)
	if v%4 != 1 {
		_ = r.SetAddrs(netip.AddrFrom4(a4), netip.AddrFrom4([4]byte{10, 0, 0, byte(v)}))
	} else {
		var a16 [16]byte
		a16[0] = 0x20
		binary.BigEndian.PutUint32(a16[12:], v)
		_ = r.SetAddrs(netip.AddrFrom16(a16), netip.AddrFrom16([16]byte{0xfd, 15: byte(v)}))
	}
	return r
}

// consistent reports whether r is whole: every field but Expires (which
// tests set on their own) agrees with its IngressPeer.
func consistent(r Route) bool {
	r.Expires = 0
	return r == routeFor(r.IngressPeer)
}

// checkShards verifies the bucket invariants of every shard and the route
// count.
func checkShards(t testing.TB, tbl *Table) {
	t.Helper()
	total := 0
	for si := range tbl.shards {
		s := tbl.shards[si].Load()
		n := 0
		nb := len(s.sigs)
		if len(s.slots) != nb*bucketSlots || len(s.expires) != len(s.slots) {
			t.Fatalf("shard %d: %d slots for %d buckets", si, len(s.slots), nb)
		}
		for i := range s.slots {
			b, lane := i/bucketSlots, i%bucketSlots
			sig := s.sigs[b][lane/4] >> (16 * (lane % 4)) & 0x7fff
			if s.slots[i].key == (SessionID{}) {
				if s.slots[i] != (slot{}) || sig != 0 || s.expires[i] != 0 {
					t.Fatalf("shard %d slot %d is empty but not zeroed (signature %#x)", si, i, sig)
				}
				continue
			}
			n++
			if x, ok := s.slots[i].spilled(); ok {
				if int(x) >= len(s.spill) || s.slots[i] != (slot{key: s.slots[i].key, vlan: vlanSpill, src4: s.slots[i].src4}) {
					t.Fatalf("shard %d slot %d: spilled to %d of %d, slot %+v", si, i, x, len(s.spill), s.slots[i])
				}
				if r := s.spill[x]; fits(&r) || r.Expires != 0 {
					t.Fatalf("shard %d slot %d: spilled route %+v fits a slot or has an expiry", si, i, r)
				}
			}
			k := s.slots[i].key
			h := tbl.key.sum(&k)
			if int(h>>tbl.shift) != si {
				t.Fatalf("shard %d holds a key of shard %d", si, h>>tbl.shift)
			}
			if sig != sigOf(h) {
				t.Fatalf("shard %d slot %d: signature %#x, want %#x", si, i, sig, sigOf(h))
			}
			// Every bucket from the route's home to the one before its
			// own carries the overflow mark, so lookups go on to it.
			for hb := int(s.home(h)); hb != b; hb = (hb + 1) % nb {
				if s.sigs[hb][0]&overMark == 0 {
					t.Fatalf("shard %d slot %d: bucket %d, between home %d and %d, has no overflow mark", si, i, hb, s.home(h), b)
				}
			}
		}
		if n != s.n {
			t.Fatalf("shard %d counts %d routes, holds %d", si, s.n, n)
		}
		if s != empty && (float64(n) > maxLoad*float64(len(s.slots)) || n == 0) {
			t.Fatalf("shard %d: %d routes in %d slots", si, n, len(s.slots))
		}
		total += n
	}
	if total != tbl.Len() {
		t.Fatalf("Len %d, shards hold %d", tbl.Len(), total)
	}
}

func TestLayout(t *testing.T) {
	// The figures of the package doc and the cache-line reasoning depend on
	// these sizes; a field added to Route must keep them or update both.
	if got := reflect.TypeFor[Route]().Size(); got != 88 {
		t.Errorf("Route is %d bytes, want 88", got)
	}
	if got := reflect.TypeFor[slot]().Size(); got != 64 {
		t.Errorf("slot is %d bytes, want 64 (a cache line)", got)
	}
	// A pointer in a slot would make the collector scan every table array.
	var walk func(reflect.Type)
	walk = func(ty reflect.Type) {
		switch ty.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map, reflect.String, reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
			t.Errorf("slot contains a %v", ty)
		case reflect.Array:
			walk(ty.Elem())
		case reflect.Struct:
			for i := range ty.NumField() {
				walk(ty.Field(i).Type)
			}
		}
	}
	walk(reflect.TypeFor[slot]())
}

func TestShardCount(t *testing.T) {
	for _, c := range []struct{ max, shards int }{
		{1, 1}, {1024, 1}, {1025, 2}, {100_000, 128}, {1 << 20, 1024}, {1 << 24, 16384},
	} {
		tbl, err := New(c.max)
		if err != nil {
			t.Fatal(err)
		}
		if len(tbl.shards) != c.shards {
			t.Errorf("New(%d): %d shards, want %d", c.max, len(tbl.shards), c.shards)
		}
	}
	for _, bad := range []int{0, -1, 1<<24 + 1} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%d) succeeded", bad)
		}
	}
}

func TestPutLookupDelete(t *testing.T) {
	tbl, err := New(5000)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	for i := range uint64(n) {
		if err := tbl.Put(testID(i), testRoute(i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	checkShards(t, tbl)
	for i := range uint64(n) {
		r, ok := tbl.Lookup(testID(i))
		if !ok || r != testRoute(i, 1) {
			t.Fatalf("route %d: got %v %+v", i, ok, r)
		}
	}
	if _, ok := tbl.Lookup(testID(n)); ok {
		t.Fatal("found a route never put")
	}
	if _, ok := tbl.Lookup(SessionID{}); ok {
		t.Fatal("found the zero id")
	}
	// Replace keeps the count.
	if err := tbl.Put(testID(7), testRoute(7, 2)); err != nil {
		t.Fatal(err)
	}
	if r, _ := tbl.Lookup(testID(7)); r != testRoute(7, 2) || tbl.Len() != n {
		t.Fatalf("replace: %+v, len %d", r, tbl.Len())
	}
	for i := uint64(0); i < n; i += 2 {
		if !tbl.Delete(testID(i)) {
			t.Fatalf("delete %d: not found", i)
		}
	}
	if tbl.Delete(testID(0)) || tbl.Delete(SessionID{}) {
		t.Fatal("deleted a missing route")
	}
	checkShards(t, tbl)
	for i := range uint64(n) {
		_, ok := tbl.Lookup(testID(i))
		if ok != (i%2 == 1) {
			t.Fatalf("after deletes, route %d found=%v", i, ok)
		}
	}
	// Deleting everything shrinks every shard back to the shared empty one.
	for i := uint64(1); i < n; i += 2 {
		tbl.Delete(testID(i))
	}
	checkShards(t, tbl)
	if st := tbl.Stats(); st.Routes != 0 || st.Slots != 0 {
		t.Fatalf("empty table stats %+v", st)
	}
}

func TestApplyAllOrNothing(t *testing.T) {
	tbl, _ := New(10)
	var b Batch
	for i := range uint64(10) {
		b.Put(testID(i), testRoute(i, 0))
	}
	if err := tbl.Apply(&b); err != nil {
		t.Fatal(err)
	}
	// An eleventh route is refused, and nothing of its batch lands.
	b.Reset()
	b.Delete(testID(0))
	b.Put(testID(100), testRoute(100, 0))
	b.Put(testID(101), testRoute(101, 0))
	if err := tbl.Apply(&b); !errors.Is(err, ErrFull) {
		t.Fatalf("over-full batch: %v", err)
	}
	if _, ok := tbl.Lookup(testID(0)); !ok || tbl.Len() != 10 {
		t.Fatal("a refused batch changed the table")
	}
	// Replacing within the maximum is fine, and a delete makes room.
	b.Reset()
	b.Put(testID(3), testRoute(3, 9))
	b.Delete(testID(0))
	b.Put(testID(100), testRoute(100, 0))
	if err := tbl.Apply(&b); err != nil {
		t.Fatal(err)
	}
	if r, _ := tbl.Lookup(testID(3)); r != testRoute(3, 9) {
		t.Fatal("replace in batch lost")
	}
	// Invalid changes name their index and change nothing.
	bad := testRoute(1, 0)
	bad.Family = 5
	for _, c := range []struct {
		name string
		fill func(*Batch)
		want error
	}{
		{"zero id", func(b *Batch) { b.Put(testID(200), testRoute(200, 0)); b.Put(SessionID{}, testRoute(1, 0)) }, ErrZeroID},
		{"invalid", func(b *Batch) { b.Delete(testID(1)); b.Put(testID(201), bad) }, ErrInvalidRoute},
	} {
		b.Reset()
		c.fill(&b)
		if err := tbl.Apply(&b); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if _, ok := tbl.Lookup(testID(1)); !ok || tbl.Len() != 10 {
			t.Errorf("%s: the refused batch changed the table", c.name)
		}
	}
	// Later changes of one id win.
	b.Reset()
	b.Put(testID(5), testRoute(5, 1))
	b.Delete(testID(5))
	b.Put(testID(5), testRoute(5, 2))
	b.Delete(testID(6))
	b.Put(testID(6), testRoute(6, 3))
	if err := tbl.Apply(&b); err != nil {
		t.Fatal(err)
	}
	if r, _ := tbl.Lookup(testID(5)); r != testRoute(5, 2) {
		t.Fatal("order within a batch not kept")
	}
	if r, _ := tbl.Lookup(testID(6)); r != testRoute(6, 3) {
		t.Fatal("order within a batch not kept")
	}
	checkShards(t, tbl)
}

func TestValidate(t *testing.T) {
	good := testRoute(2, 0) // IPv4 UDP
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	six := testRoute(3, 0)
	if six.Family != IPv6 || six.Validate() != nil {
		t.Fatal("IPv6 test route is not valid")
	}
	for _, c := range []struct {
		name string
		mod  func(*Route)
	}{
		{"zero family", func(r *Route) { r.Family = 0 }},
		{"v4 family, v6 address", func(r *Route) { r.DstIP = six.DstIP }},
		{"v6 family, v4 address", func(r *Route) { r.Family = IPv6 }},
		{"no encap", func(r *Route) { r.Encap = 0 }},
		{"unknown encap", func(r *Route) { r.Encap = 3 }},
		{"udp without port", func(r *Route) { r.DstPort = 0 }},
		{"reserved flag", func(r *Route) { r.Flags |= 1 << 15 }},
		{"vlan 4095", func(r *Route) { r.VLAN = 4095 }},
		{"negative expiry", func(r *Route) { r.Expires = -1 }},
	} {
		r := good
		c.mod(&r)
		if err := r.Validate(); !errors.Is(err, ErrInvalidRoute) {
			t.Errorf("%s: Validate = %v", c.name, err)
		}
	}
	ip := good
	ip.Encap, ip.DstPort, ip.SrcPort = EncapIP, 0, 0
	if err := ip.Validate(); err != nil {
		t.Errorf("IP-encapsulated route without ports: %v", err)
	}
	var r Route
	if err := r.SetAddrs(netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")); !errors.Is(err, ErrInvalidRoute) {
		t.Errorf("mixed families: %v", err)
	}
	if err := r.SetAddrs(netip.Addr{}, netip.MustParseAddr("2001:db8::1")); !errors.Is(err, ErrInvalidRoute) {
		t.Errorf("missing address: %v", err)
	}
	if err := r.SetAddrs(netip.MustParseAddr("::ffff:192.0.2.1"), netip.MustParseAddr("198.51.100.7")); err != nil || r.Family != IPv4 {
		t.Fatalf("mapped IPv4: %v %v", err, r.Family)
	}
	if r.SrcAddr() != netip.MustParseAddr("192.0.2.1") || r.DstAddr() != netip.MustParseAddr("198.51.100.7") {
		t.Errorf("addresses round trip to %v %v", r.SrcAddr(), r.DstAddr())
	}
	if r.DstIP[10] != 0xff || r.DstIP[15] != 7 {
		t.Errorf("IPv4 not stored mapped: %x", r.DstIP)
	}
}

func TestSweep(t *testing.T) {
	tbl, _ := New(4096)
	base := time.Unix(1_700_000_000, 0)
	var b Batch
	for i := range uint64(3000) {
		r := testRoute(i, 0)
		if i%3 != 0 { // a third never expires
			r.Expires = base.Add(time.Duration(i) * time.Second).UnixNano()
		}
		b.Put(testID(i), r)
	}
	if err := tbl.Apply(&b); err != nil {
		t.Fatal(err)
	}
	if n := tbl.Sweep(base); n != 0 {
		t.Fatalf("swept %d routes before any was due", n)
	}
	// Routes 1..1000 that are not multiples of 3 are due at base+1000s.
	if n := tbl.Sweep(base.Add(1000 * time.Second)); n != 667 {
		t.Fatalf("swept %d, want 667", n)
	}
	checkShards(t, tbl)
	for i := range uint64(3000) {
		_, ok := tbl.Lookup(testID(i))
		if want := i%3 == 0 || i > 1000; ok != want {
			t.Fatalf("route %d present=%v after sweep", i, ok)
		}
	}
	if n := tbl.Sweep(base.Add(1000 * time.Second)); n != 0 {
		t.Fatalf("second sweep removed %d", n)
	}
	if n := tbl.Sweep(base.Add(time.Hour)); n != 1333 {
		t.Fatalf("final sweep removed %d, want 1333", n)
	}
	if tbl.Len() != 1000 {
		t.Fatalf("%d routes left, want the 1000 that never expire", tbl.Len())
	}
	for si, m := range tbl.minExpires {
		if m != math.MaxInt64 {
			t.Fatalf("shard %d still has an expiry bound %d", si, m)
		}
	}
}

func TestHashIsKeyed(t *testing.T) {
	a, _ := New(1)
	b, _ := New(1)
	same := 0
	for i := range uint64(64) {
		id := testID(i)
		if a.key.sum(&id) == b.key.sum(&id) {
			same++
		}
	}
	if same > 0 {
		t.Fatalf("%d of 64 ids hash the same under two tables' keys", same)
	}
}

// TestHashSpread checks that structured ids (a counter, as a careless peer
// might use) spread evenly over shards and slots: a chi-square test on
// 1024 buckets for both the shard bits and the slot reduction.
func TestHashSpread(t *testing.T) {
	tbl, _ := New(1 << 20) // 1024 shards
	const n, buckets = 1 << 18, 1024
	var shardCount, slotCount [buckets]float64
	probe := &shard{sigs: make([]bucket, buckets)}
	for i := range uint64(n) {
		id := testID(i)
		h := tbl.key.sum(&id)
		shardCount[h>>tbl.shift]++
		slotCount[probe.home(h)]++
	}
	for name, c := range map[string]*[buckets]float64{"shard": &shardCount, "slot": &slotCount} {
		exp := float64(n) / buckets
		chi := 0.0
		for _, o := range c {
			chi += (o - exp) * (o - exp) / exp
		}
		// 1023 degrees of freedom: mean 1023, sd 45; 1300 is six sd out.
		if chi > 1300 {
			t.Errorf("%s buckets: chi-square %.0f, want about 1023", name, chi)
		}
	}
}

func TestLookupBurst(t *testing.T) {
	tbl, _ := New(1 << 16)
	var b Batch
	for i := range uint64(20_000) {
		b.Put(testID(i), testRoute(i, 0))
	}
	if err := tbl.Apply(&b); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]SessionID, 70) // not a multiple of the chunk
	routes := make([]Route, len(ids))
	found := make([]bool, len(ids))
	for range 200 {
		want := 0
		for j := range ids {
			switch x := rng.Uint64N(40_000); {
			case x == 0:
				ids[j] = SessionID{}
			default:
				ids[j] = testID(x)
			}
		}
		got := tbl.LookupBurst(ids, routes, found)
		for j, id := range ids {
			r, ok := tbl.Lookup(id)
			if ok {
				want++
			}
			r.Expires = 0 // LookupBurst leaves it out
			if found[j] != ok || routes[j] != r {
				t.Fatalf("burst lookup %d of %x: %v %+v, Lookup says %v %+v", j, id, found[j], routes[j], ok, r)
			}
		}
		if got != want {
			t.Fatalf("LookupBurst counted %d hits, want %d", got, want)
		}
	}
}

func TestLookupAllocatesNothing(t *testing.T) {
	tbl, _ := New(1 << 16)
	var b Batch
	for i := range uint64(10_000) {
		b.Put(testID(i), testRoute(i, 0))
	}
	if err := tbl.Apply(&b); err != nil {
		t.Fatal(err)
	}
	var i uint64
	var sink Route
	if a := testing.AllocsPerRun(1000, func() {
		i++
		r, _ := tbl.Lookup(testID(i % 20_000))
		sink.IngressPeer ^= r.IngressPeer
	}); a != 0 {
		t.Errorf("Lookup allocates %v times", a)
	}
	ids := make([]SessionID, 32)
	routes := make([]Route, 32)
	found := make([]bool, 32)
	if a := testing.AllocsPerRun(200, func() {
		for j := range ids {
			i++
			ids[j] = testID(i % 20_000)
		}
		tbl.LookupBurst(ids, routes, found)
	}); a != 0 {
		t.Errorf("LookupBurst allocates %v times", a)
	}
}

func TestStats(t *testing.T) {
	tbl, _ := New(1 << 20)
	var b Batch
	n := 200_000
	if raceEnabled {
		n = 50_000
	}
	for i := range uint64(n) {
		b.Put(testID(i), testRoute(i, 0))
	}
	if err := tbl.Apply(&b); err != nil {
		t.Fatal(err)
	}
	st := tbl.Stats()
	if st.Routes != n || st.Shards != 1024 {
		t.Fatalf("stats %+v", st)
	}
	// A bulk install sizes every shard at rebuildLoad (0.7), up to the
	// rounding of each shard's array.
	if l := st.Load(); l < 0.65 || l > rebuildLoad {
		t.Errorf("load after a bulk install %.3f, want about %.2f", l, rebuildLoad)
	}
	// Every slot costs its line, signature and expiry; a spilled route
	// (one in four of testRoute's) its whole Route besides.
	perSlot := float64(slotBytes + bucketBytes/bucketSlots + expiresBytes)
	if bpr := st.BytesPerRoute(); bpr < perSlot/maxLoad || bpr > perSlot/0.65+0.5*float64(routeBytes) {
		t.Errorf("%.1f bytes per route, outside the documented range", bpr)
	}
	if st.MaxProbe < 2 || st.MaxProbe > 16 {
		t.Errorf("longest probe %d is implausible for a keyed hash at load %.2f", st.MaxProbe, st.Load())
	}
	checkShards(t, tbl)
	seen := 0
	tbl.Range(func(id SessionID, r Route) bool {
		seen++
		return true
	})
	if seen != n {
		t.Fatalf("Range saw %d routes", seen)
	}
}

// TestSlotsAligned checks what the slot layout relies on: every slot array
// starts on a 64-byte boundary, so each slot is one cache line. Shards of
// every size from one bucket to a few thousand are made by installing
// routes.
func TestSlotsAligned(t *testing.T) {
	for _, n := range []int{1, 5, 6, 7, 12, 30, 57, 100, 333, 1000, 4000, 20_000} {
		tbl, _ := New(n)
		var b Batch
		for i := range uint64(n) {
			b.Put(testID(i), testRoute(i, 0))
		}
		if err := tbl.Apply(&b); err != nil {
			t.Fatal(err)
		}
		for si := range tbl.shards {
			s := tbl.shards[si].Load()
			if p := reflect.ValueOf(s.slots).Pointer(); p%64 != 0 {
				t.Errorf("%d routes: shard %d's %d slots start at %#x, not on a cache line", n, si, len(s.slots), p)
			}
		}
	}
}

// TestSlotRoundTrip stores routes at the edges of what fits a slot and
// just past them, and reads each back whole, through Lookup (with its
// expiry) and LookupBurst (without).
func TestSlotRoundTrip(t *testing.T) {
	base := routeFor(8) // IPv4, fits
	if !fits(&base) {
		t.Fatal("routeFor(8) should fit a slot")
	}
	cases := []struct {
		name  string
		set   func(r *Route)
		spill bool
	}{
		{"plain", func(r *Route) {}, false},
		{"extremes", func(r *Route) {
			r.IngressPeer, r.IngressKey, r.EgressKey, r.EgressPeer, r.Counter = math.MaxUint32, 1, math.MaxUint32-1, 0, math.MaxUint32
			r.EgressPort, r.VLAN, r.Flags = math.MaxUint16, 4094, knownFlags
			r.DstMAC, r.SrcMAC = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, [6]byte{1}
			r.SrcPort, r.DstPort, r.Expires = math.MaxUint16, 1, math.MaxInt64
			_ = r.SetAddrs(netip.MustParseAddr("255.255.255.255"), netip.MustParseAddr("0.0.0.0"))
		}, false},
		{"encap ip", func(r *Route) { r.Encap, r.SrcPort, r.DstPort = EncapIP, 0, 0 }, false},
		{"ipv6", func(r *Route) {
			_ = r.SetAddrs(netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("fd00::ffff:1.2.3.4"))
		}, true},
	}
	tbl, _ := New(64)
	for i, c := range cases {
		r := base
		c.set(&r)
		if err := r.Validate(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if fits(&r) == c.spill {
			t.Fatalf("%s: fits = %v", c.name, fits(&r))
		}
		id := testID(uint64(i + 1))
		if err := tbl.Put(id, r); err != nil {
			t.Fatal(err)
		}
		if got, ok := tbl.Lookup(id); !ok || got != r {
			t.Errorf("%s: Lookup = %v %+v, want %+v", c.name, ok, got, r)
		}
		var routes [1]Route
		var found [1]bool
		tbl.LookupBurst([]SessionID{id}, routes[:], found[:])
		want := r
		want.Expires = 0
		if !found[0] || routes[0] != want {
			t.Errorf("%s: LookupBurst = %v %+v, want %+v", c.name, found[0], routes[0], want)
		}
		// Replaced by the next case's route (which may spill where this
		// one did not, or the reverse), the old one must not show through.
		if i > 0 {
			if err := tbl.Put(testID(uint64(i)), r); err != nil {
				t.Fatal(err)
			}
			if got, _ := tbl.Lookup(testID(uint64(i))); got != r {
				t.Errorf("%s: after replacing case %d: %+v", c.name, i-1, got)
			}
		}
	}
	checkShards(t, tbl)
}

// TestCompaction updates a table far past what its arenas may carve
// before compacting, and checks that every route survives each compaction
// whole, that compactions happen, and that the chunks a table pins stay
// within the bound arena documents.
func TestCompaction(t *testing.T) {
	const n = 20_000
	tbl, _ := New(1 << 15)
	var b Batch
	for i := range uint64(n) {
		b.Put(testID(i), testRoute(i, 0))
	}
	if err := tbl.Apply(&b); err != nil {
		t.Fatal(err)
	}
	st := tbl.Stats()
	slotsBytes := st.Slots * slotBytes
	if st.ChunkBytes > slotsBytes+slotsBytes/4 {
		t.Errorf("after a bulk install the chunks hold %d bytes for %d bytes of slots: not compacted", st.ChunkBytes, slotsBytes)
	}
	compactions, last := 0, st.ChunkBytes
	for v := uint32(1); v <= 3000; v++ {
		i := uint64(v*7919) % n
		if err := tbl.Put(testID(i), testRoute(i, v)); err != nil {
			t.Fatal(err)
		}
		st := tbl.Stats()
		if st.ChunkBytes < last {
			compactions++
		}
		last = st.ChunkBytes
		live := st.Slots*slotBytes + st.Slots/bucketSlots*bucketBytes
		if limit := 3*live + 2*tbl.slotArena.max*slotBytes + 2*tbl.sigArena.max*bucketBytes; st.ChunkBytes > limit {
			t.Fatalf("after %d puts the chunks hold %d bytes, over %d (live %d)", v, st.ChunkBytes, limit, live)
		}
	}
	if compactions == 0 {
		t.Error("3000 shard copies and not one compaction")
	}
	for i := range uint64(n) {
		r, ok := tbl.Lookup(testID(i))
		if v := r.IngressPeer - uint32(i)*7919; !ok || !consistent(r) || v > 3000 {
			t.Fatalf("route %d after compactions: %v %+v", i, ok, r)
		}
	}
	checkShards(t, tbl)
	if runtime.GOOS == "linux" {
		big, _ := New(1 << 20)
		b.Reset()
		for i := range uint64(200_000) {
			b.Put(testID(i), testRoute(i, 0))
		}
		if err := big.Apply(&b); err != nil {
			t.Fatal(err)
		}
		// 200K routes take ~18 MB of slots in one chunk, which covers
		// 2 MiB pages whatever its alignment. The advice failing is
		// possible (a kernel without THP) but not here: say so.
		if st := big.Stats(); st.HugeBytes == 0 {
			t.Logf("no chunk memory advised for huge pages (THP: %s)", thpMode())
		} else {
			t.Logf("%d of %d chunk bytes advised for huge pages", st.HugeBytes, st.ChunkBytes)
		}
	}
}

func thpMode() string {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil {
		return err.Error()
	}
	return strings.TrimSpace(string(b))
}
