// Package ledger is the relay's economics and memory: SWAP accounts per peer,
// thresholds and signed cheques, the generosity score and classes, and the
// durable SHA-256 chained journal.
package ledger
