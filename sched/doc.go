// Package sched is the egress scheduler: per-class bounded queues of packet
// handles, strict priority with a token-bucket cap on the upper classes, deficit
// round robin below, and a starvation floor so the lowest class is
// deprioritised but never blocked.
//
// # Use
//
// A worker owns one Scheduler per (egress port, TX queue); nothing in it is
// shared, so the hot path takes no lock and no atomic. Once per burst:
//
//	for each classified frame: if !s.Enqueue(now, class, h, length) { free h }
//	n := s.Dequeue(now, tx)      // tx is the TX burst array
//	sent := tx_burst(tx[:n])
//	s.Requeue(sent)              // refused frames go back to the head
//
// Handles are opaque uintptrs (mbuf pointers), so queueing allocates nothing
// and makes no interface call per frame; the rings are allocated by New. Time
// is the caller's: every call takes now in the ticks of Egress.TicksPerSecond
// (nanoseconds in tests, the TSC in the data plane), and the package never
// reads a clock. Stats returns plain counters for the owner to publish.
//
// # Policy
//
// Four classes, each a fixed-capacity FIFO: Control (the relay's own frames
// from the control core's inject ring), Priority, Normal and Deprioritised.
// Dequeue hands frames out in runs of one class picked by one rule, the first
// of these that applies; a run goes on while that rule allows the next frame,
// up to the end of the TX burst, so the rules are applied once per run and a
// guard that falls due waits at most one burst:
//
//  1. Maximum wait: a Deprioritised frame that has waited max_wait_us at the
//     head of its queue is served next. The wait counts from when the frame
//     reached the head (its arrival, or the previous frame's departure), not
//     from its arrival: under a standing queue every head arrived long ago,
//     and counting from arrival would hand the link to the lowest class. On a
//     link too slow to send one such frame per max_wait_us within
//     floor_percent of its rate (at least 5%), the wait stretches so the
//     guard never takes more than that share.
//  2. Strict priority: Control, then Priority, while its token bucket
//     (rate_percent of the egress rate, burst_bytes deep) has tokens.
//  3. Floor: while Deprioritised has frames queued it earns floor_percent of
//     every byte sent, and is served as soon as its credit covers its head
//     frame. It ranks below the capped strict classes, which keeps it from
//     adding to their latency, and still holds: the caps and the floor must
//     sum below 100%, so the strict classes always leave it room. An idle
//     class banks nothing; the credit's debt is bounded so that service it
//     got beyond the floor does not delay the floor later.
//  4. Deficit round robin over every backlogged class with byte quanta
//     (quantum_bytes). Control and Priority take part once over their cap,
//     so the cap limits how much they take ahead of the others, never what
//     they get from a link the others leave idle. Deprioritised takes part
//     only when no other class has frames queued: beside them it has its
//     floor and its maximum wait, and it has the whole link they leave.
//     When it took part beside Normal, a heavy consumer got a third of a
//     congested link (quanta 3000:1500), which is as much as a freerider's
//     frames ever asked for: the incentive simulation (package sim) showed
//     freeriders served as well as contributors.
//
// With the defaults (caps 5% and 60%, floor 10%, quanta 3000/3000/3000/1500)
// three classes backlogged at once get about 75% Priority, 15% Normal and 10%
// Deprioritised; Normal and Deprioritised alone, 90% and 10%. So under overload Priority is lossless and fast only while
// it offers less than that: what it offers beyond is what the cap and the
// floor keep for the classes below.
//
// # What "lossless up to 3x overload" means
//
// The priority target (no loss, p99 within 2x of uncongested, up to 3x
// overload) is read as: the egress is offered three times its capacity C in
// all, and the Priority class offers no more than its share of C (about 75%
// with the defaults, when every class is backlogged). Then Priority loses
// nothing whatever the others offer, because the overload is theirs. It
// cannot mean that Priority alone may offer C or more: a floor above zero
// and a cap below 100% exist precisely to take part of the link from it,
// so any such offer loses at least what they reserve (with the defaults, a
// priority peer offering C while the others are backlogged loses about 25%).
// make bench-sched therefore runs both: "3x", where each of three peers
// offers C (the priority loss there is that reservation, reported and
// named), and "3x_others", where the priority peer offers what it offers
// uncongested (0.3C) and the two others 1.35C each (3C in all); its final
// summary line is the 3x_others case, and says so on the line before.
//
// An optional shaper (a token bucket of Egress.ShapeRate bytes/s, as deep
// as shaper_burst_us of that rate) stops Dequeue when its tokens are spent,
// so the backlog forms in these queues, where the policy applies, and not in
// the NIC's TX ring. The caller shares a port's rate among its TX queues.
//
// A frame offered to a full queue is dropped at the tail and counted per
// class: the queued frames keep their place and order, and the refused
// handle stays with the caller, so nothing has to be evicted and handed
// back. Frames refused by tx_burst are handed back with Requeue, which
// rewinds to the state before the Dequeue (popping leaves the frames in
// place) and dequeues again only what tx_burst took: the refused frames are
// at the head of their queues in their order, nothing is dropped, and the
// shaper, caps, round robin and floor are as if they had never left. This
// is why Requeue must come before the next accepted Enqueue.
//
// # Classes of relayed frames
//
// A relayed frame's class is the class of the peer it is relayed for: the
// peer that authenticated the outer hop and is charged for the bytes. The
// route entry found by the hop's session id names that peer, and the data
// plane's immutable snapshot maps the peer to its class. The ledger fills
// that map from the generosity score it measures itself (major contributors
// Priority, balanced and light consumers Normal, heavy consumers
// Deprioritised); until it does, the control core publishes a class table,
// and a peer absent from the map gets default_class (Normal: a new identity
// does not start in the best class). Control is never assigned to a relayed
// frame.
//
// The POOL PRIORITY flag does not affect scheduling, in either header. It is
// set by the sender: on the outer header by the very peer being classified,
// on the inner frame end to end, where the relay cannot verify it. A class
// queue is shared by every peer of the class, so even a flag that only
// reordered within the class would let a peer jump ahead of its classmates,
// and reordering a session's frames would reach the receiver as loss.
// Honouring it within one peer's own traffic would need per-peer queues,
// which these per-class FIFOs deliberately are not. The inner frame, flag
// included, is carried untouched.
package sched
