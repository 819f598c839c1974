package relay

import "github.com/poolrelay/poolrelay/dataplane/wire"

// Reason is why a worker dropped a frame: one of the wire codec's reasons
// (Classify and Rewrite), or one of the relay's own below, numbered after
// them so that one counter array indexed by Reason holds both.
type Reason int

// The relay's own drop reasons.
const (
	// ReasonNoRoute: a relayed DATA frame whose hop session has no route.
	ReasonNoRoute = Reason(wire.NumDropReasons) + iota
	// ReasonDisabled: the route is installed but disabled (route.FlagDisabled).
	ReasonDisabled
	// ReasonUnresolved: the route takes its next-hop MAC from the
	// neighbour table, which does not hold it (yet).
	ReasonUnresolved
	// ReasonDebt: the peer the frame is relayed for is choked.
	ReasonDebt
	// ReasonNoKey: the route's ingress or egress key slot holds no key.
	ReasonNoKey
	// ReasonBadMAC: the hop MAC does not verify under the ingress key.
	ReasonBadMAC
	// ReasonReplay: the hop seq was seen before or is older than the
	// replay window.
	ReasonReplay
	// ReasonSeqExhausted: the egress key has handed out its last seq
	// (hopmac.MaxSeq); it must be replaced.
	ReasonSeqExhausted
	// ReasonBadChannel: a DATA frame on a channel that is neither data nor
	// relay control.
	ReasonBadChannel
	// ReasonNotMine: an ARP request or neighbour solicitation for an address
	// that is not the relay's on that port.
	ReasonNotMine
	// ReasonBadEgress: the route names a port or peer slot the worker
	// cannot send by (an egress port beyond the configured ones, a peer slot
	// beyond the counters), or a VLAN tag found no headroom.
	ReasonBadEgress
	// ReasonSegmented: a multi-segment mbuf, which the views do not cover.
	ReasonSegmented
	// ReasonEgressFull: the egress class queue the frame was sent to was
	// full (tail drop; dataplane/egress counts it in its class too). The
	// peers are not charged for it.
	ReasonEgressFull
	// NumReasons is the number of reasons, wire's included: the size of the
	// counters' reason dimension.
	NumReasons
)

var reasonNames = [...]string{
	ReasonNoRoute - Reason(wire.NumDropReasons):      "no_route",
	ReasonDisabled - Reason(wire.NumDropReasons):     "disabled",
	ReasonUnresolved - Reason(wire.NumDropReasons):   "unresolved",
	ReasonDebt - Reason(wire.NumDropReasons):         "debt",
	ReasonNoKey - Reason(wire.NumDropReasons):        "no_key",
	ReasonBadMAC - Reason(wire.NumDropReasons):       "bad_mac",
	ReasonReplay - Reason(wire.NumDropReasons):       "replay",
	ReasonSeqExhausted - Reason(wire.NumDropReasons): "seq_exhausted",
	ReasonBadChannel - Reason(wire.NumDropReasons):   "bad_channel",
	ReasonNotMine - Reason(wire.NumDropReasons):      "not_mine",
	ReasonBadEgress - Reason(wire.NumDropReasons):    "bad_egress",
	ReasonSegmented - Reason(wire.NumDropReasons):    "segmented",
	ReasonEgressFull - Reason(wire.NumDropReasons):   "egress_full",
}

// String returns the reason's short name: wire's description for the codec's
// reasons, a snake_case name for the relay's.
func (r Reason) String() string {
	switch {
	case r >= 0 && r < Reason(wire.NumDropReasons):
		return wire.DropReason(r).String()
	case r >= Reason(wire.NumDropReasons) && r < NumReasons:
		return reasonNames[r-Reason(wire.NumDropReasons)]
	}
	return "unknown"
}

// Event is something a worker counts that is neither traffic nor a drop
// (counters.Core.Event, below counters.MaxEvents).
type Event int

// The workers' events.
const (
	// EventChecksumCompleted: a relayed frame arrived with a UDP checksum
	// its sender left to offload (only the pseudo-header sum, as a veth
	// with TX checksum offload on delivers it to an AF_PACKET or AF_XDP
	// port), and the worker computed the whole checksum before sending it
	// on. A frame whose checksum is simply wrong is not recognised (the hop
	// MAC, not the checksum, is what a relay verifies) and is forwarded
	// with its checksum still wrong, for the next receiver to drop.
	EventChecksumCompleted Event = iota
	// NumEvents is the number of events.
	NumEvents
)

var eventNames = [...]string{
	EventChecksumCompleted: "checksum_completed",
}

// String returns the event's snake_case name.
func (e Event) String() string {
	if e >= 0 && e < NumEvents {
		return eventNames[e]
	}
	return "unknown"
}
