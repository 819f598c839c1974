package relay

import (
	"testing"

	"github.com/poolrelay/poolrelay/crypto/hopmac"
	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/dataplane/wire/wiretest"
)

// TestBurstNoAllocs runs Worker.Burst on real mbufs (a synthetic burst of
// 32 relayed frames copied into mbufs, sent on a net_null port) and proves
// that the whole per-burst path, the Burst's flush included, allocates
// nothing.
func TestBurstNoAllocs(t *testing.T) {
	eal := needEAL(t)
	pools := eal.NewPools("allocs", 1023, 0, 0)
	pc := dataplane.DefaultPortConfig()
	pc.Name, pc.Device = "alloc", "net_null_alloc,size=128"
	port, err := eal.OpenPort(pc, 1, pools)
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	pool, err := pools.For(port.Socket())
	if err != nil {
		t.Fatal(err)
	}
	b, err := eal.NewBurst(dpdk.BurstConfig{Size: 32, Tx: []dpdk.Queue{port.TxQueue(0)}, Socket: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	vec, err := dpdk.NewMbufVec(32)
	if err != nil {
		t.Fatal(err)
	}
	defer vec.Close()
	f := newFixture(t, true)
	rx := hopmac.New(rxKey)
	m := wiretest.Matcher()
	fs := burst(t, 32, rx, 1)
	seq := uint64(1000)
	ms := vec.Mbufs()
	var failed error
	allocs := testing.AllocsPerRun(100, func() {
		if err := pool.AllocBulk(ms); err != nil {
			failed = err
			return
		}
		for i, fr := range fs {
			restamp(fr, m, rx, seq)
			seq++
			if err := ms[i].CopyFrom(fr); err != nil {
				failed = err
			}
		}
		f.w.Burst(b, 0, ms)
		b.Flush()
	})
	if failed != nil {
		t.Fatal(failed)
	}
	if allocs != 0 {
		t.Errorf("%v allocations per burst, want 0", allocs)
	}
	if got, want := f.set.Peer(peerIn).ForPackets, uint64(101*32); got != want {
		t.Errorf("relayed %d frames, want %d", got, want)
	}
	if st := b.Stats(); st.Tx != 101*32 {
		t.Errorf("burst stats %+v", st)
	}
}
