// Package policy is the relay's tit-for-tat towards each peer: cooperate
// first with a small credit line, choke a peer whose debt passes its limit
// (the data plane then drops its relayed frames with reason "debt"),
// disconnect it if it has not settled within a grace period, and resume as
// soon as a cheque brings it back. The credit line grows with what the peer
// has settled, so a fresh identity (a whitewasher) starts with little.
package policy

import (
	"math"
	"math/bits"
	"time"
)

// DropReasonDebt is the data plane's drop reason for frames of a choked peer.
const DropReasonDebt = "debt"

// Config is the policy's parameters (filled from the [ledger] section).
type Config struct {
	// Payment and Disconnect are the full thresholds that a peer in good
	// standing gets.
	Payment, Disconnect uint64
	// InitialCredit is the disconnect limit of a peer that has never settled.
	InitialCredit uint64
	// GrowthPercent is how much the credit line grows per unit settled, in
	// percent: 100 means each unit a peer has paid raises its limit by one.
	GrowthPercent uint64
	// Grace is how long a choked peer keeps its connection.
	Grace time.Duration
}

// Limits are the thresholds that apply to one peer now. They are what the
// relay announces to that peer, so the peer pays before it is choked.
type Limits struct {
	Payment, Disconnect uint64
}

// Limits returns the thresholds for a peer that has settled the given
// cumulative amount: the disconnect limit is the credit line (initial credit
// plus growth, capped at the configured Disconnect), and the payment
// threshold keeps the configured payment:disconnect ratio under it.
func (c Config) Limits(settled uint64) Limits {
	hi, lo := bits.Mul64(settled, c.GrowthPercent)
	growth := uint64(math.MaxUint64)
	if hi < 100 {
		growth, _ = bits.Div64(hi, lo, 100)
	}
	credit := c.Disconnect
	if growth < c.Disconnect && c.InitialCredit < c.Disconnect-growth {
		credit = c.InitialCredit + growth
	}
	if credit == c.Disconnect {
		return Limits{Payment: c.Payment, Disconnect: c.Disconnect}
	}
	hi, lo = bits.Mul64(credit, c.Payment)
	pay, _ := bits.Div64(hi, lo, c.Disconnect) // credit < Disconnect, so hi < Disconnect
	return Limits{Payment: pay, Disconnect: credit}
}

// Action is what the ledger must do after Decide.
type Action uint8

// Actions.
const (
	// None: nothing changes.
	None Action = iota
	// Choke: the peer passed its disconnect limit; stop relaying for it.
	Choke
	// Resume: a choked peer is back within its payment threshold.
	Resume
	// Disconnect: the peer stayed choked for the grace period. Decide keeps
	// returning it until the peer is gone.
	Disconnect
)

// String names the action for logs.
func (a Action) String() string {
	switch a {
	case Choke:
		return "choke"
	case Resume:
		return "resume"
	case Disconnect:
		return "disconnect"
	}
	return "none"
}

// State is the policy's memory of one peer.
type State struct {
	Choked bool
	// ChokedAt is when the peer was choked, Unix ns.
	ChokedAt int64
}

// Decide updates st for a peer owing debt under lim at now. Choking is at
// the disconnect limit but resuming only at the payment threshold, so a peer
// hovering at the limit does not flap between the two.
func (c Config) Decide(st *State, debt uint64, lim Limits, now time.Time) Action {
	switch {
	case !st.Choked && debt > lim.Disconnect:
		st.Choked, st.ChokedAt = true, now.UnixNano()
		return Choke
	case st.Choked && debt <= lim.Payment:
		st.Choked, st.ChokedAt = false, 0
		return Resume
	case st.Choked && now.UnixNano()-st.ChokedAt >= int64(c.Grace):
		return Disconnect
	}
	return None
}
