package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Duration is a time.Duration that reads and writes as Go's duration text
// ("1m30s") in JSON, so that requests are readable and writable by hand.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	*d = Duration(v)
	return nil
}

// Status is the answer to status: the relay at a glance.
type Status struct {
	// Version is the daemon's build version.
	Version string `json:"version"`
	// Identity is the relay's Ed25519 identity (peer id, hex).
	Identity string `json:"identity"`
	// Network is the POOL network id.
	Network uint32 `json:"network"`
	// Started is when the daemon started.
	Started time.Time `json:"started"`
	// Score is the relay's generosity score computed from its own
	// measurements, (Relayed + P) / (Consumed + P) with P the ledger's
	// score_prior_bytes, and Class the class that score falls in
	// (score.Class names: major_contributor, balanced, light_consumer,
	// heavy_consumer).
	Score float64 `json:"score"`
	Class string  `json:"class"`
	// Relayed is the bytes this relay relayed for others (bytes
	// contributed) and Consumed the bytes others relayed for it (bytes
	// consumed), as this relay measured them: the sums over every account
	// of Peer.RelayedForBytes and Peer.RelayedByBytes, kept across restarts.
	Relayed  uint64 `json:"relayed_bytes"`
	Consumed uint64 `json:"consumed_bytes"`
	// ControlIn and ControlOut are the bytes of control frames (handshakes,
	// heartbeats, routes, cheques) received from and sent to peers, summed
	// over the accounts. They are in neither Relayed nor Consumed and count
	// in no score; what they cost is Peer.ControlCharged.
	ControlIn  uint64 `json:"control_in_bytes"`
	ControlOut uint64 `json:"control_out_bytes"`
	// Attested is what the relay's peers say of it in their signed
	// heartbeats, evidence beside the totals above.
	Attested Attested `json:"attested"`
	// ActivePeers is the number of connected peers; Routes the number of
	// relayed routes installed.
	ActivePeers int `json:"active_peers"`
	Routes      int `json:"routes"`
	// Ports are the data plane ports with their current rates.
	Ports []PortRate `json:"ports"`
	// Journal is the change journal's durable head.
	Journal JournalHead `json:"journal"`
	// PendingConfig is set while an applied configuration awaits
	// confirmation.
	PendingConfig *PendingConfig `json:"pending_config,omitempty"`
	// StaticPeers are the static lab peers' names; Unauthenticated those
	// of them whose frames are relayed without hop authentication.
	StaticPeers     []string `json:"static_peers,omitempty"`
	Unauthenticated []string `json:"unauthenticated_peers,omitempty"`
}

// PortRate is one port's traffic rate, averaged by the daemon over its last
// sampling interval.
type PortRate struct {
	Name   string `json:"name"`
	Device string `json:"device"`
	// Up is the link state.
	Up bool `json:"up"`
	// Packets and bits per second in each direction.
	RxPPS float64 `json:"rx_pps"`
	TxPPS float64 `json:"tx_pps"`
	RxBPS float64 `json:"rx_bps"`
	TxBPS float64 `json:"tx_bps"`
	// DropPPS is the frames the relay dropped per second, all reasons and
	// all ports together: the workers count drops by reason, not by port,
	// so every port carries the same figure (pool_relay status prints it
	// once).
	DropPPS float64 `json:"drop_pps"`
}

// JournalHead identifies the journal's durable state.
type JournalHead struct {
	Records uint64 `json:"records"`
	// Head is the last record's hash, hex.
	Head string `json:"head"`
	// State is "ok", or "degraded" while the journal cannot write (a full
	// disk): nothing that needs a record (a received cheque, a route, a
	// cheque to issue) is acknowledged until it writes again, which it
	// retries every second by itself. Error and Since say why and since
	// when; NotWritten counts the records it could not write since start.
	State      string     `json:"state,omitempty"`
	Error      string     `json:"error,omitempty"`
	Since      *time.Time `json:"degraded_since,omitempty"`
	NotWritten uint64     `json:"records_not_written,omitempty"`
}

// Peer is one peer of the relay: who it is, its standing and its account.
type Peer struct {
	// ID is the peer's Ed25519 identity, hex.
	ID string `json:"id"`
	// Address is where its session comes from ("192.0.2.7:9254").
	Address   string `json:"address"`
	Connected bool   `json:"connected"`
	// Reconnecting: the relay keeps a session with this peer (it enrolled
	// with it, or the peer with us) and is enrolling with it again after
	// the session went (a restart, a timeout); Address is where it tries.
	Reconnecting bool `json:"reconnecting,omitempty"`
	// Class and Score are its generosity class and score as we measured them.
	Class string  `json:"class"`
	Score float64 `json:"score"`
	// Choked: its relayed frames are dropped (reason "debt") until it settles.
	Choked bool `json:"choked"`
	// Balance is positive when the peer owes us; Surplus is what it paid
	// beyond its debt; Limit is its current disconnect limit (credit line).
	Balance int64  `json:"balance"`
	Surplus uint64 `json:"surplus"`
	Limit   uint64 `json:"limit"`
	// RelayedFor is what we relayed for the peer (it is charged), RelayedBy
	// what it relayed for us, in bytes and packets.
	RelayedForBytes   uint64 `json:"relayed_for_bytes"`
	RelayedForPackets uint64 `json:"relayed_for_packets"`
	RelayedByBytes    uint64 `json:"relayed_by_bytes"`
	RelayedByPackets  uint64 `json:"relayed_by_packets"`
	// ControlIn is the control frames' bytes received from the peer
	// (enrollment, heartbeats, routes, cheques), ControlOut those sent to
	// it. They are not relayed bytes and count in no score; they are
	// charged at the control prices of the ledger's configuration
	// (control_price_per_packet, control_price_per_byte).
	ControlInBytes  uint64 `json:"control_in_bytes"`
	ControlOutBytes uint64 `json:"control_out_bytes"`
	// ControlCharged is the part of Balance that control frames made, in
	// ledger units at the current terms: what the peer was charged for the
	// control frames it sent (at our control prices) minus what we were
	// charged for ours (at its). Relayed frames and cheques made the rest.
	// Between two relays heartbeats roughly cancel out; an end node, which
	// announces no prices, pays for its own.
	ControlCharged int64 `json:"control_charged"`
	// ChequesIn and ChequesOut are the cumulative cheque totals received
	// from and issued to the peer.
	ChequesIn  uint64 `json:"cheques_in"`
	ChequesOut uint64 `json:"cheques_out"`
	// RTT is the last heartbeat round trip; 0 when unknown.
	RTT Duration `json:"rtt"`
	// Telemetry is the link's telemetry from the heartbeats, this relay's
	// measures beside the peer's claims; absent without a session (a
	// static lab peer has none).
	Telemetry *PeerTelemetry `json:"telemetry,omitempty"`
	// FirstSeen is when the account was created.
	FirstSeen time.Time `json:"first_seen"`
	// Static is the name of a static lab peer ([[control.static_peer]]),
	// empty for an enrolled one; Auth is its hop authentication: "hop"
	// (pre-shared key) or "none" (an unauthenticated peer, whose frames are
	// relayed without MAC or replay checks). Empty for enrolled peers,
	// which always authenticate.
	Static string `json:"static,omitempty"`
	Auth   string `json:"auth,omitempty"`
}

// PeerTelemetry is a peer link's telemetry two ways: Local as this relay
// measured it, Claimed as the peer's last signed heartbeat reported it.
// Claims are evidence, never a reason to trust the peer more.
type PeerTelemetry struct {
	Local   LinkTelemetry `json:"local"`
	Claimed LinkTelemetry `json:"claimed"`
	// Heartbeats is the sequence of the peer's last heartbeat accepted (0:
	// none yet, Claimed is empty).
	Heartbeats uint64 `json:"heartbeats"`
}

// LinkTelemetry is what a heartbeat carries about a link. Local values:
// RTT and jitter from the heartbeats' echoes, loss of heartbeats, the bytes
// relayed with the peer per second over the last heartbeat interval, this
// relay's MTU and the session's age as Uptime. Claimed values are the
// peer's own (its uptime is its process's).
type LinkTelemetry struct {
	RTT    Duration `json:"rtt"`
	Jitter Duration `json:"jitter"`
	// LossPPM is the loss in parts per million.
	LossPPM uint32 `json:"loss_ppm"`
	// ThroughputBPS is in bits per second.
	ThroughputBPS uint64   `json:"throughput_bps"`
	MTU           uint16   `json:"mtu"`
	Uptime        Duration `json:"uptime"`
	// QueueDepth is the sender's control queue depth (claimed only).
	QueueDepth uint32 `json:"queue_depth,omitempty"`
}

// Stats is the answer to stats: cumulative counters per port, egress queue,
// class and drop reason.
type Stats struct {
	Ports  []PortStats  `json:"ports"`
	Queues []QueueStats `json:"queues"`
	Drops  []DropStats  `json:"drops"`
	// Events are what the workers counted that is neither traffic nor a
	// drop, by name, cumulative since start: checksum_completed, relayed
	// frames whose UDP checksum the sender left to offload and the relay
	// completed.
	Events map[string]uint64 `json:"events,omitempty"`
	// Control are the control core's counters by name (handshakes,
	// heartbeats accepted and rejected by reason, heartbeat_mismatch,
	// routes, cheques), cumulative since start.
	Control map[string]uint64 `json:"control,omitempty"`
	// StaticPeers are the static lab peers' data plane counters since
	// they were installed.
	StaticPeers []StaticPeerStats `json:"static_peers,omitempty"`
}

// StaticPeerStats are a static lab peer's frames relayed for it (it is
// charged) and towards it, as the workers counted them.
type StaticPeerStats struct {
	Name string `json:"name"`
	// Auth is "hop" or "none" (unauthenticated), as in Peer.
	Auth              string `json:"auth"`
	RelayedForPackets uint64 `json:"relayed_for_packets"`
	RelayedForBytes   uint64 `json:"relayed_for_bytes"`
	RelayedToPackets  uint64 `json:"relayed_to_packets"`
	RelayedToBytes    uint64 `json:"relayed_to_bytes"`
}

// PortStats are one port's cumulative counters as the device counts them
// (rte_eth_stats_get, what dpdk-telemetry's /ethdev/stats shows): every
// frame received and sent, the control core's own (handshakes, heartbeats,
// cheques, ARP) included.
type PortStats struct {
	Name      string `json:"name"`
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
	// Missed is what the NIC dropped for lack of RX descriptors (imissed).
	Missed uint64 `json:"missed"`
}

// QueueStats are the counters of one class queue of one egress scheduler
// (one per port and TX queue).
type QueueStats struct {
	Port  string `json:"port"`
	Queue int    `json:"queue"`
	// Class is the scheduling class: control, priority, normal or
	// deprioritised.
	Class       string `json:"class"`
	SentPackets uint64 `json:"sent_packets"`
	// SentBytes is bytes on the wire, as the scheduler counts them for its
	// shares and rates: each frame plus 24 bytes of preamble, inter-frame
	// gap and FCS, so more than the port's TX bytes for the same frames.
	SentBytes uint64 `json:"sent_bytes"`
	// Dropped counts frames refused at a full queue.
	Dropped uint64 `json:"dropped"`
	// Depth is the number of frames queued when the snapshot was taken.
	Depth int `json:"depth"`
	// Share is the fraction of its scheduler's bytes this class sent over
	// the daemon's last sampling interval (0 to 1).
	Share float64 `json:"share"`
}

// DropStats counts the frames dropped for one reason.
type DropStats struct {
	Reason  string `json:"reason"`
	Packets uint64 `json:"packets"`
}

// Route is a relayed route (hop session) installed in the data plane.
type Route struct {
	// Session is the hop session id, 32 hex digits.
	Session string `json:"session"`
	// From is the peer the frames are relayed for (charged), To the next hop.
	From string `json:"from"`
	To   string `json:"to"`
	// Port is the egress port's name; NextHop the next hop's IP address.
	Port    string `json:"port"`
	NextHop string `json:"next_hop"`
	// Static routes were added with route add; the others by the control
	// core for enrolled peers.
	Static bool `json:"static"`
	// Expires is when the route is removed; zero never.
	Expires time.Time `json:"expires,omitzero"`
	// Sessions is the number of consecutive session ids from Session a
	// configuration's static_route covers; 0 (omitted) for other routes,
	// which cover one.
	// Config is set for routes from the configuration, whose From and To
	// are static peers' names.
	Sessions int  `json:"sessions,omitempty"`
	Config   bool `json:"config,omitempty"`
	// The route's traffic in both directions together since it was
	// installed: frames, outer POOL bytes (what peers are charged),
	// frames and bits per second over the daemon's last sampling
	// interval, and when a frame was last relayed on it (zero: never).
	Packets  uint64    `json:"packets"`
	Bytes    uint64    `json:"bytes"`
	PPS      float64   `json:"pps"`
	BPS      float64   `json:"bps"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Forward is the traffic of Session from From to To, Reverse that of
	// its reverse session back.
	Forward RouteTraffic `json:"forward"`
	Reverse RouteTraffic `json:"reverse"`
}

// RouteTraffic is one direction's traffic on a route.
type RouteTraffic struct {
	Packets  uint64    `json:"packets"`
	Bytes    uint64    `json:"bytes"`
	PPS      float64   `json:"pps"`
	BPS      float64   `json:"bps"`
	LastSeen time.Time `json:"last_seen,omitzero"`
}

// RouteSpec are the arguments of route.add.
type RouteSpec struct {
	Session string `json:"session"`
	From    string `json:"from"`
	To      string `json:"to"`
	Port    string `json:"port"`
	NextHop string `json:"next_hop"`
	// TTL removes the route after this long; 0 keeps it until route.del.
	TTL Duration `json:"ttl,omitempty"`
}

// RouteDelArgs are the arguments of route.del.
type RouteDelArgs struct {
	Session string `json:"session"`
}

// Score is the answer to score: the relay's own score and each peer's.
type Score struct {
	// Own is the relay's score computed from its own measurements as
	// Status.Score is, Class its class; Relayed and Consumed are the totals
	// behind it (Status.Relayed and Status.Consumed).
	Own      float64 `json:"own"`
	Class    string  `json:"class"`
	Relayed  uint64  `json:"relayed_bytes"`
	Consumed uint64  `json:"consumed_bytes"`
	// PriorBytes is P in Own = (Relayed + P) / (Consumed + P).
	PriorBytes uint64 `json:"prior_bytes"`
	// Attested is what the relay's peers say of it.
	Attested Attested    `json:"attested"`
	Peers    []PeerScore `json:"peers"`
}

// Attested is what a relay's peers say of it: the sums of the latest signed
// counters each reporting peer sent in its heartbeats since the daemon
// started, and the score computed from them with the same prior. It is
// evidence to compare with the relay's own totals (the seed's "your
// contributed must match the peer's consumed"), not their source.
type Attested struct {
	Score float64 `json:"score"`
	Class string  `json:"class"`
	// Relayed is what the peers say this relay relayed for them, Consumed
	// what they say they relayed for it, in bytes.
	Relayed  uint64 `json:"relayed_bytes"`
	Consumed uint64 `json:"consumed_bytes"`
	// ReportingPeers is how many peers' signed counters these sums hold.
	ReportingPeers int `json:"reporting_peers"`
}

// PeerScore is one peer's generosity as this relay measured it.
type PeerScore struct {
	ID    string  `json:"id"`
	Score float64 `json:"score"`
	Class string  `json:"class"`
	// RelayedBy is what the peer relayed for us, RelayedFor what we relayed
	// for it, in bytes.
	RelayedBy  uint64 `json:"relayed_by_bytes"`
	RelayedFor uint64 `json:"relayed_for_bytes"`
}

// Cheque is one settlement entry: per peer, the last cheque accepted from it
// and the last issued to it (cheques are cumulative, so these settle the
// account).
type Cheque struct {
	// Direction is "received" (the peer owes us Cumulative) or "issued".
	Direction   string    `json:"direction"`
	Peer        string    `json:"peer"`
	Issuer      string    `json:"issuer"`
	Beneficiary string    `json:"beneficiary"`
	Network     uint32    `json:"network"`
	Cumulative  uint64    `json:"cumulative"`
	Sequence    uint64    `json:"sequence"`
	Date        time.Time `json:"date"`
	// Signed is the 172-byte signed cheque, hex: enough to verify it
	// without trusting the other fields.
	Signed string `json:"signed"`
}

// EnrollArgs are the arguments of enroll.
type EnrollArgs struct {
	// Address is the peer relay's address, IP or IP:PORT (POOL relay port
	// 9254 when omitted), optionally preceded by the POOL address it must
	// prove: "pool1-relay-...@192.0.2.7:9254".
	Address string `json:"address"`
}

// UnenrollArgs are the arguments of unenroll.
type UnenrollArgs struct {
	// Peer is the peer's id (hex) or its address as shown by peers.
	Peer string `json:"peer"`
}

// Unenrolled is the answer to unenroll: which peer it closed, by its full
// id, since the request may have named it by a prefix or an address.
type Unenrolled struct {
	// Peer is the unenrolled peer's id (hex).
	Peer string `json:"peer"`
	// Address is where the peer was reached, IP:PORT, when known.
	Address string `json:"address,omitempty"`
}

// ConfigState is the answer to the config commands.
type ConfigState struct {
	// Config is the running configuration, TOML.
	Config string `json:"config"`
	// Pending is set while an applied configuration awaits confirmation.
	Pending *PendingConfig `json:"pending,omitempty"`
	// SavedTo is the file the configuration was written to when this call
	// made it permanent (config confirm, or apply with confirm_within 0):
	// the file given to start --config, its mode and owner kept. Empty when
	// nothing was written (a pending change, or a relay started without
	// --config).
	SavedTo string `json:"saved_to,omitempty"`
}

// PendingConfig describes a tentatively applied configuration.
type PendingConfig struct {
	// Applied is when it was applied; Deadline when it is rolled back unless
	// confirmed.
	Applied  time.Time `json:"applied"`
	Deadline time.Time `json:"deadline"`
	// SHA256 identifies the applied file (hex).
	SHA256 string `json:"sha256"`
}

// ConfigApplyArgs are the arguments of config.apply.
type ConfigApplyArgs struct {
	// Config is the new configuration file's text, TOML. It travels in the
	// request, not as a path, because the daemon may not see the operator's
	// files (systemd's ProtectHome and PrivateTmp).
	Config string `json:"config"`
	// ConfirmWithin is how long the configuration stays without
	// confirmation before it is rolled back; 0 applies it permanently.
	ConfirmWithin Duration `json:"confirm_within"`
}

// MaxTraceFrames bounds one trace request.
const MaxTraceFrames = 4096

// TraceArgs are the arguments of trace.
type TraceArgs struct {
	// Port is the port's name.
	Port string `json:"port"`
	// Count is the number of frames to capture, 1 to MaxTraceFrames.
	Count int `json:"count"`
	// Snaplen truncates each frame; 0 keeps whole frames.
	Snaplen int `json:"snaplen,omitempty"`
	// Timeout ends the capture early; 0 waits for Count frames, within the
	// server's command timeout.
	Timeout Duration `json:"timeout,omitempty"`
}

// Trace is the answer to trace: the frames captured, oldest first. The CLI
// writes them to a pcap file on its side, so the file belongs to the
// operator and the daemon needs no write access to the operator's paths.
type Trace struct {
	Port string `json:"port"`
	// LinkType is the pcap link type (1, Ethernet).
	LinkType uint32       `json:"link_type"`
	Frames   []TraceFrame `json:"frames"`
}

// TraceFrame is one captured frame.
type TraceFrame struct {
	Time time.Time `json:"time"`
	// Length is the frame's length on the wire; Data may be shorter
	// (Snaplen).
	Length int    `json:"length"`
	Data   []byte `json:"data"`
}

// JournalSummary is the answer to journal.verify.
type JournalSummary struct {
	Path    string `json:"path"`
	Records uint64 `json:"records"`
	Head    string `json:"head"`
	// Torn describes a damaged tail, empty when there is none.
	Torn string `json:"torn,omitempty"`
}

// Empty is the result of commands that return nothing but success.
type Empty struct{}

// decodeArgs decodes raw strictly into v; absent args leave v zero.
func decodeArgs(raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Errorf(CodeInvalidArgument, "args: %v", err)
	}
	if dec.More() {
		return Errorf(CodeInvalidArgument, "args: trailing data")
	}
	return nil
}
