// Package ledger is the relay's economics and memory: SWAP accounts per peer,
// thresholds and signed cheques, the tit-for-tat policy, the generosity score
// and classes, and the durable SHA-256 chained journal.
//
// Ledger ties the subpackages together and owns their state on the control
// core: account (bilateral balances), cheque (signed cumulative cheques),
// policy (credit line, choke, disconnect), score (generosity and classes),
// journal and event (the audit trail), store (bbolt checkpoints), clock (the
// injected time source). Nothing here runs on the packet path: the data plane
// reads the per-peer choke state and class from the snapshot the control
// core builds with PeerStates.
//
// # Durability
//
// A cheque, received or issued, is committed when its journal entry is
// durable (group-committed fsync); only then is it acknowledged (received)
// or handed to the sender (issued). Balances, counters and policy state are
// checkpointed to the store every checkpoint_interval, and on Open the
// journal's cheques newer than the store are replayed, which is idempotent
// because cheque totals are cumulative. A kill -9 at any instant therefore
// loses no acknowledged cheque; it can lose the traffic charges counted since
// the last checkpoint, on which nothing was acknowledged.
//
// # Reconciliation after a restart
//
// Those lost charges are still in the peer's records: its heartbeats carry
// its signed lifetime counters of the link. The first three such claims
// after Open reconcile each account (see CheckClaim): per direction, the
// traffic a claim shows beyond our own counters is adopted and journalled
// (RECONCILE) while all the adoptions of the restart cost at most
// reconcile_max_charge; a larger difference is a MISMATCH and nothing of it
// is adopted. (Three, because traffic flowing while a heartbeat travels
// makes one claim fall short: the next take up the rest.) The claim is evidence, so the bound
// is all a lying peer can move per restart; counters and debts only grow,
// and the score, which rests on what this relay observed, is not fed. Until
// the claim comes (at most 30 s after the peer reconnects), an account whose
// issued cheques were replayed is not forgiven: those cheques paid charges
// the checkpoint lacks, so its balance shows a debt of the peer that does not
// exist, and forgiving it would make us pay the same traffic twice.
package ledger
