package counters

import (
	"fmt"

	"github.com/poolrelay/poolrelay/internal/cacheline"
)

// MaxRouteSlots bounds the route counter slots given to NewRoutes: one per
// direction of the largest route table ([dataplane] max_routes, 1<<24) and
// slot 0, the shared slot.
const MaxRouteSlots = 1<<24 + 1

// Route is the cumulative traffic of one route counter slot, summed over
// all cores: the frames relayed by the routes that carried the slot, and
// their outer POOL bytes (the unit the peers are charged in).
type Route struct {
	Packets, Bytes uint64
}

// Routes are the per-route counters: packets and bytes per route counter
// slot, per worker core, on the same single-writer, publish-per-burst
// scheme as the peer counters (see the package doc).
//
// The slot is not the route table's: the control core allocates one per
// route direction when it installs the route and carries it in the route
// (route.Route.Counter), so the counters do not depend on how the table
// lays out its entries. Slot 0 is shared by every route installed without
// a slot of its own; nobody reads it as a route.
//
// Memory: 32 bytes per slot per core (a 16-byte accumulator and its
// 16-byte published copy) and a 4096-entry dirty list per core. For the
// default table of 1<<20 routes that is 32 MiB per worker core, 512 MiB
// on a 16-core box. The arrays are made once at start, from memory the
// runtime takes fresh from the kernel, whose pages are backed only once
// written: a core pays resident memory only for the pages of the slots it
// counted (a 4 KiB page holds 128 slots), and reading untouched slots maps
// the kernel's zero page. RSS keeps a flow's frames on one core, so each
// route is usually written by one core only: 1M busy routes then cost
// about 32 MB resident whatever the number of cores, and 32 MB per core
// only in the worst case of every core counting every route.
type Routes struct {
	slots int
	cores []*RouteCore
	// views[i] is core i's published array, immutable; readers never
	// touch a RouteCore.
	views [][]pairPub
}

// NewRoutes returns route counters for cores worker cores and slots slots
// (slot 0 included), all zero.
func NewRoutes(cores, slots int) (*Routes, error) {
	if cores < 1 || cores > MaxCores {
		return nil, fmt.Errorf("counters: %d cores is out of range: use 1 to %d", cores, MaxCores)
	}
	if slots < 1 || slots > MaxRouteSlots {
		return nil, fmt.Errorf("counters: %d route slots is out of range: use 1 to %d", slots, MaxRouteSlots)
	}
	r := &Routes{slots: slots, cores: make([]*RouteCore, cores), views: make([][]pairPub, cores)}
	for i := range r.cores {
		c := &RouteCore{
			acc:   cacheline.Isolated[routeAcc](slots),
			pub:   cacheline.Isolated[pairPub](slots),
			dirty: cacheline.Isolated[uint32](routeDirty)[:0],
		}
		r.cores[i], r.views[i] = c, c.pub
	}
	return r, nil
}

// Core returns the route counters of worker core i (0 to Cores()-1), to be
// written by that worker's goroutine only.
func (r *Routes) Core(i int) *RouteCore { return r.cores[i] }

// Cores returns the number of worker cores.
func (r *Routes) Cores() int { return len(r.cores) }

// Slots returns the number of slots, slot 0 included.
func (r *Routes) Slots() int { return r.slots }

// Route returns the published totals of slot over all cores; a slot beyond
// Slots reads as zero.
func (r *Routes) Route(slot uint32) Route {
	var t Route
	if int64(slot) >= int64(r.slots) {
		return t
	}
	for _, v := range r.views {
		t.Packets += v[slot].packets.Load()
		t.Bytes += v[slot].bytes.Load()
	}
	return t
}

// AllRoutes appends the published totals of slots 0 to n-1 (n at most
// Slots; a larger n is cut to it) to dst[:0] and returns it. Pass the
// previous result to reuse its memory. It reads core by core, each core's
// slots in order, which is the cheap order for large n.
func (r *Routes) AllRoutes(dst []Route, n int) []Route {
	n = min(max(n, 0), r.slots)
	dst = resize(dst, n)
	for _, v := range r.views {
		v = v[:n]
		for i := range dst {
			dst[i].Packets += v[i].packets.Load()
			dst[i].Bytes += v[i].bytes.Load()
		}
	}
	return dst
}

// routeDirty is the capacity of a core's dirty list (16 KiB): the distinct
// routes a worker may count between two publishes before Add publishes
// early rather than grow the list. The relay worker publishes route
// counters every millisecond or so, not every burst (two atomic stores per
// route and burst were 8 ns a frame for bursts of 32 distinct routes), so
// a publish costs two stores per route seen in that time.
const routeDirty = 4096

// listed marks a slot that is on the dirty list, in its packets
// accumulator's top bit: a slot would need 2^63 frames to reach it, and the
// mark costs no byte beside the two counts (16 bytes a slot, not 24).
const listed = 1 << 63

// routeAcc is a slot's cumulative values as the writer keeps them; the top
// bit of packets is the listed mark.
type routeAcc struct {
	packets, bytes uint64
}

// RouteCore is one worker core's route counters. Like Core, its methods are
// for that worker only: no lock, no allocation, no atomic read-modify-write.
// A slot at or beyond Slots panics (it can only come from a bug in whoever
// filled the route table; the relay worker checks before counting).
type RouteCore struct {
	_ cacheline.Pad

	acc   []routeAcc
	pub   []pairPub
	dirty []uint32

	_ cacheline.Pad
}

// Add counts packets frames totalling bytes bytes relayed under slot.
func (c *RouteCore) Add(slot uint32, packets, bytes int) {
	a := &c.acc[slot]
	if a.packets&listed == 0 {
		if len(c.dirty) == cap(c.dirty) {
			c.Publish()
		}
		c.dirty = append(c.dirty, slot)
		a.packets |= listed
	}
	a.packets += uint64(packets)
	a.bytes += uint64(bytes)
}

// Publish makes everything counted since the last Publish visible to
// readers: two atomic stores per slot counted since, nothing per frame.
func (c *RouteCore) Publish() {
	for _, slot := range c.dirty {
		a := &c.acc[slot]
		a.packets &^= listed
		p := &c.pub[slot]
		p.packets.Store(a.packets)
		p.bytes.Store(a.bytes)
	}
	c.dirty = c.dirty[:0]
}

// Pending reports whether counts wait for a Publish.
func (c *RouteCore) Pending() bool { return len(c.dirty) != 0 }

// Slots returns the number of slots, slot 0 included.
func (c *RouteCore) Slots() int { return len(c.acc) }
