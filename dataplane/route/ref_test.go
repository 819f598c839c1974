package route

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// refTable is the slow, obviously correct model of Table: a Go map and a
// count limit, with the same all-or-nothing batch rule.
type refTable struct {
	max    int
	routes map[SessionID]Route
}

func (m *refTable) apply(ops []op) error {
	next := make(map[SessionID]Route, len(m.routes))
	for k, v := range m.routes {
		next[k] = v
	}
	for _, o := range ops {
		switch {
		case o.id == (SessionID{}):
			return ErrZeroID
		case o.del:
			delete(next, o.id)
		case o.route.Validate() != nil:
			return ErrInvalidRoute
		default:
			next[o.id] = o.route
		}
	}
	if len(next) > m.max {
		return ErrFull
	}
	m.routes = next
	return nil
}

func (m *refTable) sweep(now int64) int {
	n := 0
	for k, r := range m.routes {
		if r.Expires != 0 && r.Expires <= now {
			delete(m.routes, k)
			n++
		}
	}
	return n
}

// opReader turns bytes into operations: the fuzzer's input, or a seeded
// generator's output.
type opReader interface{ next() (byte, bool) }

type byteReader struct{ b []byte }

func (r *byteReader) next() (byte, bool) {
	if len(r.b) == 0 {
		return 0, false
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, true
}

type rngReader struct {
	rng *rand.Rand
	n   int
}

func (r *rngReader) next() (byte, bool) {
	if r.n == 0 {
		return 0, false
	}
	r.n--
	return byte(r.rng.Uint32()), true
}

// idUniverse is the ids an operation sequence can name: id 0 is the
// reserved zero id, the others are distinct.
const idUniverse = 200

func universeID(b byte) SessionID {
	b %= idUniverse
	if b == 0 {
		return SessionID{}
	}
	return testID(uint64(b))
}

// runOps plays an operation sequence on a Table and the model and fails at
// the first disagreement. The first byte picks the table size: small
// maximums exercise ErrFull and single-shard growth, the others several
// shards.
func runOps(t *testing.T, in opReader) {
	sizeByte, ok := in.next()
	if !ok {
		return
	}
	max := []int{1, 7, 40, 150, 3000}[int(sizeByte)%5]
	tbl, err := New(max)
	if err != nil {
		t.Fatal(err)
	}
	ref := &refTable{max: max, routes: map[SessionID]Route{}}
	now := int64(1000)
	var b Batch
	var ops []op
	readOp := func() (op, bool) {
		kind, ok1 := in.next()
		idb, ok2 := in.next()
		ver, ok3 := in.next()
		if !ok1 || !ok2 || !ok3 {
			return op{}, false
		}
		id := universeID(idb)
		if kind%4 == 0 {
			return op{id: id, del: true}, true
		}
		r := testRoute(uint64(idb), uint32(ver))
		switch {
		case ver%17 == 0:
			r.Family = 0 // invalid
		case ver%3 == 0:
			r.Expires = now + int64(ver%8)
		}
		return op{id: id, route: r}, true
	}
	for step := 0; ; step++ {
		kind, ok := in.next()
		if !ok {
			return
		}
		var err, refErr error
		switch kind % 8 {
		case 0, 1, 2: // single put
			o, ok := readOp()
			if !ok {
				return
			}
			o.del = false
			if o.route.Validate() != nil || o.id == (SessionID{}) {
				o.route = testRoute(uint64(o.id[7]), 1)
			}
			err = tbl.Put(o.id, o.route)
			refErr = ref.apply([]op{{id: o.id, route: o.route}})
		case 3: // single delete
			idb, ok := in.next()
			if !ok {
				return
			}
			id := universeID(idb)
			_, had := ref.routes[id]
			if got := tbl.Delete(id); got != had {
				t.Fatalf("step %d: Delete(%x) = %v, model had it: %v", step, id, got, had)
			}
			delete(ref.routes, id)
		case 4, 5: // batch
			nb, ok := in.next()
			if !ok {
				return
			}
			b.Reset()
			ops = ops[:0]
			for range int(nb % 24) {
				o, ok := readOp()
				if !ok {
					break
				}
				ops = append(ops, o)
				if o.del {
					b.Delete(o.id)
				} else {
					b.Put(o.id, o.route)
				}
			}
			err = tbl.Apply(&b)
			refErr = ref.apply(ops)
		case 6: // time passes, sweep
			dt, ok := in.next()
			if !ok {
				return
			}
			now += int64(dt % 6)
			if got, want := tbl.Sweep(time.Unix(0, now)), ref.sweep(now); got != want {
				t.Fatalf("step %d: Sweep removed %d, model %d", step, got, want)
			}
		case 7: // lookups only
		}
		for _, sentinel := range []error{ErrFull, ErrZeroID, ErrInvalidRoute} {
			if errors.Is(refErr, sentinel) != errors.Is(err, sentinel) {
				t.Fatalf("step %d: table error %v, model error %v", step, err, refErr)
			}
		}
		if (err == nil) != (refErr == nil) {
			t.Fatalf("step %d: table error %v, model error %v", step, err, refErr)
		}
		compare(t, step, tbl, ref)
	}
}

func compare(t *testing.T, step int, tbl *Table, ref *refTable) {
	t.Helper()
	if tbl.Len() != len(ref.routes) {
		t.Fatalf("step %d: Len %d, model %d", step, tbl.Len(), len(ref.routes))
	}
	var ids [idUniverse]SessionID
	for b := range idUniverse {
		id := universeID(byte(b))
		ids[b] = id
		got, ok := tbl.Lookup(id)
		want, wok := ref.routes[id]
		if ok != wok || got != want {
			t.Fatalf("step %d: Lookup(%x) = %v %+v, model %v %+v", step, id, ok, got, wok, want)
		}
	}
	// The pipelined path too: its fast cases (a signature match in the
	// home bucket, no match and no overflow mark) and its fallback.
	var routes [idUniverse]Route
	var found [idUniverse]bool
	tbl.LookupBurst(ids[:], routes[:], found[:])
	for b, id := range ids {
		want, wok := ref.routes[id]
		want.Expires = 0 // LookupBurst leaves it out
		if found[b] != wok || routes[b] != want {
			t.Fatalf("step %d: LookupBurst(%x) = %v %+v, model %v %+v", step, id, found[b], routes[b], wok, want)
		}
	}
	checkShards(t, tbl)
}

// TestAgainstModel plays long random sequences; FuzzTable explores further.
func TestAgainstModel(t *testing.T) {
	seeds := 60
	if testing.Short() || raceEnabled {
		seeds = 10
	}
	for seed := range seeds {
		runOps(t, &rngReader{rng: rand.New(rand.NewPCG(uint64(seed), 7)), n: 3000})
	}
}

func FuzzTable(f *testing.F) {
	f.Add([]byte{2, 0, 1, 5, 1, 0, 1, 6, 2, 6, 3, 5})
	f.Add([]byte{1, 4, 20, 1, 1, 1, 1, 2, 2, 2, 1, 3, 3, 3, 1, 4, 4, 4, 6, 5})
	f.Add([]byte{4, 4, 23, 1, 9, 3, 1, 10, 6, 0, 11, 9, 1, 12, 0, 3, 9, 6, 7})
	f.Fuzz(func(t *testing.T, data []byte) {
		runOps(t, &byteReader{b: data})
	})
}
