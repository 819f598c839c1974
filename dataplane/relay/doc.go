// Package relay is the relay's packet path: the per-core Worker that turns
// received bursts into forwarded, answered, punted and dropped frames, the
// Tables it reads (routes, hop keys, peer classes), and the Engine that runs
// one worker per EAL worker core on the configured ports and gives the
// control core its I/O.
//
// # The worker's steps
//
// Per burst of frames received on one port (Worker.Burst):
//
//  1. Count the burst as received on the port (one counter call).
//  2. Touch the first two cache lines of every frame of the burst, so that
//     their cache misses overlap (Go has no prefetch instruction; a kept
//     load is the portable one), then classify each frame (wire.Classify,
//     into a Result of the worker's own per-burst array). Codec drop
//     reasons are counted as such.
//  3. ARP requests for one of the relay's addresses on that port
//     (neigh.Addrs.Mine) are answered in place and sent back out of the
//     same port; neighbour solicitations likewise, in the mbuf's room, since
//     the advertisement can be longer. ARP replies and neighbour
//     advertisements are punted (the control core's resolver learns from
//     them); requests for other addresses are dropped as not_mine.
//  4. POOL frames of any type but DATA, and DATA on channel 2 (relay
//     control), are punted. DATA on a channel other than 0 or 2 is dropped.
//  5. Relayed DATA (channel 0) is looked up for the whole burst at once
//     (route.Table.LookupBurst, which overlaps the cache misses). Then, per
//     frame, in this order, so that nobody is charged for a frame the relay
//     refuses: unknown session (no_route); route disabled (disabled);
//     egress port or peer slot the worker cannot honour (bad_egress);
//     next-hop MAC from the neighbour table not resolved (unresolved);
//     ingress peer choked (debt); ingress or egress key slot empty
//     (no_key); seq outside the replay window (replay); then, for the
//     whole burst at once, MAC not verifying under the ingress rx key
//     (bad_mac), and the window takes the seq (replay if a frame of the
//     same burst took it first).
//  6. Rewrite the outer Ethernet, IP and UDP headers for the next hop
//     (wire.Rewrite; TTL or hop limit decremented, checksums updated
//     incrementally; TTL expiry drops), then write a fresh seq and the MAC
//     under the egress tx key, each inside a wire.UDPPatch so the UDP
//     checksum follows. Seqs come from the egress slot's Sequence by
//     reservation (hopmac.Sequence.Reserve): one atomic operation per burst
//     and slot, the unused rest given up at the end of the burst (a gap a
//     receiver's window accepts). The inner frame is never touched. The
//     MACs of the burst are written together, after every rewrite.
//
// The hop MACs of a burst are computed in two batches, verification after
// step 5's checks and signing after step 6's rewrites: in C (Tables chose
// it: the CPU has AES-NI; dpdk.GMACBatch, on intel-ipsec-mb's expanded
// keys) each batch is one cgo call that loops over the frames, so a
// burst makes two calls beside its Cycle whatever its size. The
// verifications' answers, the replay window and the rewrites are one pass
// over the burst, and the sign call stores each frame's UDP checksum after
// its tag (GMACBatch.AddSign, the update held from the rewrite), so a last
// pass in Go runs only for a checksum left to offload; without
// AES-NI, or on frames outside DPDK's memory (the unit tests), crypto/hopmac
// computes them in Go at the same points. Tables.MACEngine names the path,
// which the Engine logs at start (hop_macs).
//  7. Give the frame the route's VLAN: retag the outermost tag in place, or
//     (when the mbuf is at hand, on send) push an 802.1Q tag on an
//     untagged frame or pop every tag for an untagged route, moving only
//     the 12 bytes of Ethernet addresses.
//  8. Send it (Worker.send) in the class of the peer it is relayed for
//     (Tables.SetPeer), lowered to Deprioritised when the frame carries the
//     POOL header's deprioritised mark; a frame deprioritised for a peer
//     that gives no credit (Tables.SetCredit) leaves with the mark, which
//     no relay clears (sched.Relayed: the first relay's verdict on a
//     freerider holds along the path; the
//     flag and its UDP checksum change are written in step 6, under the
//     hop MAC): into the burst's batch for route.EgressPort, which
//     goes to that port's class queues in one EnqueueBurst when the worker
//     has an egress (AttachEgress, what the Engine does), else to the
//     Burst's TX buffer in one SendBurst; the burst's drops and punts go
//     to the Burst in one call each. ARP and neighbour answers go in
//     class Control. A full class queue drops the frame (egress_full, and
//     in its class's counters). Only a frame the egress took is counted
//     as sent on the port and charged: relayed for the ingress peer and
//     towards the egress peer, in bytes of the outer POOL header and
//     payload (the unit end nodes and heartbeats count too), towards it as
//     uncredited too when the ingress peer gives no credit
//     (Tables.SetCredit; the ledger leaves those bytes out of the egress
//     peer's score), summed over
//     runs of one route, and counted for the route too, under its
//     route.Route.Counter slot (counters.Routes).
//  9. Publish the counters, once per burst; the route counters about
//     once a millisecond (WorkerConfig.RoutesEvery), and at once when idle.
//
// # Egress
//
// The Engine gives each worker one dataplane/egress Port per port, in front
// of TX queue i of that port, made from Config.Sched ([sched]) and the
// port's egress_rate_mbps (shared by its TX queues) and tx_descriptors.
// The worker's Burst keeps the frames the PMD refuses (KeepRefused) and
// collects the control core's injected frames (CollectInject), which the
// Ports queue in class Control. The loop is: for each port, Drain every
// egress (what the scheduler releases now, at the TSC of the last Cycle),
// Cycle (which sends it and receives), Burst. On Stop: a last Drain,
// Flush, then each Port's Close frees what is still queued (counted as
// dropped in its class). Engine.EgressStats reads the per port, queue and
// class counters (sent, dropped, requeued, depth, share) at any time.
//
// Unresolved next hops are not punted: the control core installed the route
// with route.FlagResolveMAC and so already knows the next hop to resolve
// (neigh.Resolver.Request); a punt per unresolved frame would only flood it.
//
// The worker makes no cgo call of its own beside the two hop MAC batches
// above (the Burst's Cycle is the one per burst), takes no lock, logs nothing and allocates nothing: every per-burst
// array is sized for dpdk.MaxBurst when the Worker is made (TestNoAllocs,
// BenchmarkWorker).
//
// # Keys and replay windows
//
// Each hop key slot is published as an immutable value through its own
// atomic pointer. Tables.SetHopKeys prepares, on the control core, one
// hopmac.Key clone per worker for each direction (a Key has per-goroutine
// scratch), the same keys expanded once for intel-ipsec-mb (dpdk.GMACKey,
// read-only, shared by the workers; wiped and freed once no slot or burst
// holds them), a fresh replay window per worker and a fresh egress Sequence, so
// a worker picks a new key up with one atomic load and never clones or
// allocates. A new slot value brings empty windows, which is how a key
// change resets them: no generation counter is needed (a fresh value per
// install does the job of one with no per-worker state to compare).
//
// Replay windows are per worker and per slot, written only by their worker.
// This relies on a hop's frames (one outer 5-tuple) always reaching the same
// worker: RSS hashes a flow to one RX queue, and worker i alone polls queue
// i of every port. The limit: a peer that sends one hop session from
// several source ports or addresses (or a device without RSS on a
// multi-queue port, or an RSS reconfiguration) spreads its seqs over
// several windows, each of which then accepts a seq that another already
// accepted, so a replay could get through once per worker. Peers are
// expected to keep one 5-tuple per hop session. The egress Sequence is
// shared by all workers (an atomic counter), so nonces never repeat under a
// key whichever worker sends.
//
// # Memory
//
// Per route direction: the route table's 122-149 bytes (104-byte slot at a
// load of 0.7-0.85; route package doc), and 32 bytes of route counters per
// worker core, resident only where a core counted it (counters.Routes):
// for the default 1M routes, about 32 MB when RSS keeps each route on one
// core, 32 MB x cores at worst; the daemon's rate sampler adds 32 bytes per
// route direction in use. Per peer slot: 4 bytes of class, choke and credit
// state here and 132 bytes of counters per worker core. Per key slot: 8 bytes
// of pointer, and once installed about 2 x workers hopmac clones, a 392-byte
// padded replay window per worker and a Sequence. Per worker: the per-burst
// scratch, about 202 bytes x dpdk.MaxBurst (103 KB) and 12 bytes x
// dpdk.MaxBurst per port for its batch, allocated once, and its egress
// Ports (the class queues of package sched, sized by [sched]).
//
// # Performance
//
// One core, 128-byte frames on net_null, hugepages (go run ./bench/dataplane;
// bench/dataplane/README.md has the runs and what limits each target):
// 11.7 Mpps straight to the TX buffers, 9.8 Mpps through the egress class
// queues (~17 ns a frame of scheduling), 2.9-3.2 Mpps with hop
// authentication, 15-16 Gbit/s at 1500 B with it; 0.14x testpmd's macswap.
// The worker's own cost (BenchmarkWorker, thread CPU time): ~85-98 ns a
// frame without authentication, ~440 ns with it on 265-byte frames, where two
// AES-256-GCM calls of crypto/cipher are most of it. Lookups leave the cache
// past ~100 K routes (route package).
//
// # Tests without DPDK
//
// Worker is generic over its packet I/O (dpdk.IO): the Engine runs
// Worker[*dpdk.Burst], and the unit tests Worker[*bursttest.Burst], an
// in-memory Burst whose frames are Go memory laid out as mbufs, so that
// the whole burst (decisions, action loop, egress, counting) runs with
// CGO_ENABLED=0 as any user, and the fake checks that every mbuf goes to
// exactly one of send, drop and punt. The tests on DPDK (net_null,
// net_pcap, veth) run the same code on DPDK's mbufs.
//
// # The Engine
//
// Open (or OpenOn, on an EAL the caller owns) opens the ports with one RX
// and TX queue per worker, a mempool, one SPSC punt ring per worker and one
// SPSC inject ring per worker and port; Start runs the workers; Stop stops
// them, lets them flush, drains the rings, closes the ports and, if it
// started it, the EAL. ReadPunted and Inject are the control core's side:
// they copy, which is fine off the packet path.
package relay
