// Package egress puts the egress scheduler (package sched) between a data
// plane worker and its TX queues: per worker, per (egress port, TX queue),
// a Port holds the frames to send in per-class queues of mbuf handles and
// hands the TX buffer of the worker's dpdk.Burst only what the policy
// releases now, so that the backlog forms in these queues, where priority
// applies, and not in the NIC's TX ring, where it does not.
//
// # Use
//
// A worker makes its Burst with KeepRefused and CollectInject, and one Port
// per TX buffer (one per egress port: TX queue i of every port belongs to
// worker i). Its loop, with the burst's TSC as the clock (Config.
// TicksPerSecond = EAL.TSCHz):
//
//	ms := b.Cycle(rxq)
//	now := int64(b.TSC())
//	for _, m := range ms {
//		// parse, verify, look up, rewrite, count...
//		ports[route.EgressPort].Enqueue(m, tables.Class(route.IngressPeer), now)
//	}
//	for _, p := range ports {
//		p.Drain(now) // before the next Cycle, which sends
//	}
//
// and when it stops: a last Drain of every Port, b.Flush(), then Close of
// every Port (which frees what is still queued) and b.Close().
// relay.Engine's workers do exactly this (relay.Worker's AttachEgress,
// Drain and CloseEgress).
//
// Enqueue and Drain allocate nothing and make no cgo call: a frame is
// queued as its mbuf address (dpdk.Mbuf.Handle), and the only DPDK work
// is the Burst's one call per burst. The cost is measured by
// BenchmarkEnqueueDrain.
//
// # Packet I/O
//
// A Port is generic over the worker's packet I/O (dpdk.IO): a *dpdk.Burst
// in service, dpdk/bursttest's in-memory Burst in tests that need neither
// DPDK nor root. It calls it per burst (Drain: collect, then send the
// released frames in one SendBurst; EnqueueBurst: drop the refused ones in
// one DropBurst; settle: Flushes, Pending, Unsend), never per frame: the
// calls go through the instantiation's dictionary and are not inlined.
//
// # Refused frames
//
// Drain moves at most the TX buffer's free room (Size - Pending) into it.
// When the PMD refuses part of a burst (its ring is full), the Burst keeps
// the refused frames (KeepRefused) instead of freeing them, and the Port's
// next Enqueue or Drain takes them off the buffer (Burst.Unsend) and hands
// them back to the scheduler (sched.Requeue): they are at the head of their
// class queues in their order, nothing is lost, and the shaper, the caps,
// the round robin and the floor count only what the NIC took. Leaving them
// in the TX buffer to be retried would also lose nothing, but frames
// released before the refusal would then go ahead of a control or priority
// frame that arrived since, and the scheduler would have charged them as
// sent while they waited.
//
// # Where the backlog forms
//
// What sits in the NIC's TX ring is out of the scheduler's reach: the ring
// sends in arrival order whatever the class, so every frame in it is
// latency a priority frame cannot skip. Two settings keep it short:
//
//   - egress_rate_mbps ([[port]]): the scheduler's shaper releases no more
//     than this rate (in line bits: each frame is charged its length plus
//     WireOverhead), so with a rate a little below the link's (95 to 98%)
//     the NIC drains faster than it is fed, its ring stays near empty and
//     the backlog is all in the class queues. Each TX queue is shaped on its
//     own to the port's rate divided by its TX queues: a worker whose RSS
//     share is small leaves rate unused that the others cannot borrow
//     (sharing one bucket would cost an atomic per burst; not done).
//   - tx_descriptors ([[port]]): unshaped, the NIC ring fills to its size
//     before anything is refused and requeued here, so keep it small: 64 to
//     256, a few bursts (the PMD's minimum may be higher). New warns above
//     AdviseTxDescriptors. At 1 Gbit/s, 512 descriptors of 1500-byte frames
//     are 6 ms of queue ahead of every priority frame.
//
// # Control frames
//
// The control core's frames (handshakes, heartbeats, cheques, ARP and
// neighbour answers) come through the worker's inject ring for the port.
// With CollectInject the Burst does not send them itself but collects them,
// and Drain queues them in class Control, taking no more than that queue
// has room for: a control frame is never dropped here, the rest waits in
// the inject ring, and a full ring tells the control core (Engine.Inject
// fails) instead of losing frames silently. Going through the scheduler,
// they count against the shaper (an injected burst cannot overrun the
// port's rate or fill the NIC's ring), a refused one is requeued like any
// other, and the Control cap (rate_percent, then round robin) bounds how
// much of the link the control core can take ahead of relayed traffic, for
// instance a flood of CHALLENGE answers. The binding's default, topping the
// TX buffer up from the ring, would send them ahead of everything,
// uncounted by the shaper and freed when refused; it stays for callers
// without a scheduler.
//
// # Classes and the PRIORITY flag
//
// The class a worker passes to Enqueue is the class of the peer the frame
// is relayed for (the peer that authenticated the outer hop and is charged
// for it), from the table the ledger or the control core publishes
// (relay.Tables.SetPeer). A sender cannot promote itself: the POOL PRIORITY
// flag (flags bit 2), on the outer header or the inner frame, plays no part
// and is carried untouched. It does not demote either, nor order frames
// within a class: the flag is the sender's own claim, class queues are
// FIFOs shared by every peer of the class, and honouring it even within one
// peer's traffic would split a session across queues and reorder it, which
// the receiver sees as loss. The reasoning is in package sched's doc.
//
// # Counters
//
// The scheduler's counters (per class: enqueued, sent, dropped at a full
// queue, requeued after a refusal, depth; the starvation guard's work) and
// the injected count are published by the worker every
// Config.PublishMicros under a sequence count; Stats, from any goroutine,
// returns a consistent snapshot of the last publication.
package egress
