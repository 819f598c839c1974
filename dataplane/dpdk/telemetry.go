package dpdk

import (
	"errors"
	"fmt"
)

// This file holds the part of the telemetry commands that does not need
// DPDK: the types, the name rules and the layout of a reply within DPDK's
// limits. EAL.RegisterTelemetry (telemetry_cgo.go) does the rest.
//
// DPDK's telemetry library serves JSON on a SOCK_SEQPACKET unix socket,
// <runtime dir>/dpdk_telemetry.v2, which dpdk-telemetry.py talks to: a
// client reads a greeting, writes "/command" or "/command,params" and reads
// one JSON reply {"/command": ...} per request. The socket is created by
// rte_eal_init, served by a control thread of DPDK's; every connection gets
// a thread of its own too (at most 10 at a time: an 11th is closed at
// once), and that thread runs the command's callback. With --no-telemetry
// there is no socket: commands can still be registered, but nobody can ask
// for them. With --in-memory the socket is there as usual, in the runtime
// directory the EAL still creates (only its shared config files are not).
// Registration does not depend on the socket: DPDK's command table is
// static, so only EAL.RegisterTelemetry's receiver demands an EAL.

// Limits of DPDK 22.11's telemetry library. Those its public header does
// not export (there is no RTE_TEL_MAX_CMD_LEN in 22.11) are private
// constants of lib/telemetry/telemetry.c; TestTelemetryLimits checks them
// against the running library.
const (
	// MaxTelemetryCmdLen is the longest command name DPDK accepts, in
	// bytes: MAX_CMD_LEN is 56 with the terminating NUL.
	MaxTelemetryCmdLen = 55
	// MaxTelemetryHelpLen is the longest help text DPDK accepts, in
	// bytes: MAX_HELP_LEN is 128 with the terminating NUL.
	MaxTelemetryHelpLen = 127
	// MaxTelemetryNameLen is the longest value or group name a reply
	// carries, in bytes (RTE_TEL_MAX_STRING_LEN is 128 with the NUL);
	// longer names are cut.
	MaxTelemetryNameLen = 127
	// TelemetryTruncatedKey is the top-level key of a reply that could not
	// hold all the values its command returned; its value is the number
	// of values left out.
	TelemetryTruncatedKey = "_truncated"

	// telemetryMaxEntries is RTE_TEL_MAX_DICT_ENTRIES: what one dict (the
	// reply, or one of its groups) can hold.
	telemetryMaxEntries = 256
	// telemetryMaxOutput is MAX_OUTPUT_LEN, the largest reply DPDK writes,
	// announced as max_output_len in the greeting. DPDK quietly leaves out
	// whatever does not fit, so the layout below stays within it.
	telemetryMaxOutput = 16384
)

// Sentinel errors of RegisterTelemetry.
var (
	// ErrTelemetryName is returned for a command name or help text DPDK
	// would refuse, or one the binding keeps for DPDK's own commands.
	ErrTelemetryName = errors.New("dpdk: invalid telemetry command")
	// ErrTelemetryExists is returned when the command is already
	// registered: DPDK would list it twice and answer only one of them.
	ErrTelemetryExists = errors.New("dpdk: telemetry command already registered")
)

// TelemetryValue is one counter of a telemetry reply.
//
// A reply is a JSON object: values with an empty Group are its members,
// and the values that share a Group make up a nested object of that name,
// so a command can answer {"ports": {"eth0": {"rx_packets": 1, ...}}} as
// well as {"rx_packets": 1}. DPDK allows only ASCII letters, digits, '_'
// and '/' in names: any other byte is sent as '_', and names longer than
// MaxTelemetryNameLen are cut. Names should be unique within their object;
// JSON readers keep only one of duplicates.
type TelemetryValue struct {
	Group string
	Name  string
	Value uint64
}

// TelemetryFunc answers one request for a telemetry command. params is
// what the client wrote after the first comma ("/cmd,params"), or "". It
// appends the reply's values to dst (dst[:0] of the previous answer's
// slice, so a steady command allocates nothing for them) and returns the
// slice; an error makes the reply {"/cmd": null}.
//
// It runs on a DPDK telemetry thread, never on a worker, one request at a
// time for the whole EAL, and with the EAL's lock held, so it must not
// call EAL methods that take the lock (Close, OpenPort, NewRing, ...).
// It must read only what the data plane publishes for other cores
// (atomic counters) and must not wait for the data plane: a worker must
// never be stopped or slowed down for a telemetry request.
type TelemetryFunc func(params string, dst []TelemetryValue) ([]TelemetryValue, error)

// reservedTelemetryCmds are the commands of the telemetry protocol itself:
// registering one again would hide DPDK's from clients.
var reservedTelemetryCmds = map[string]bool{"/": true, "/info": true, "/help": true}

// checkTelemetryCmd returns an error wrapping ErrTelemetryName unless DPDK
// 22.11 would accept cmd and help: cmd starts with '/', is at most
// MaxTelemetryCmdLen bytes of ASCII letters, digits, '_' and '/', and help
// is at most MaxTelemetryHelpLen bytes without a NUL.
func checkTelemetryCmd(cmd, help string, fn TelemetryFunc) error {
	switch {
	case fn == nil:
		return fmt.Errorf("%w %q: nil function", ErrTelemetryName, cmd)
	case len(cmd) == 0 || cmd[0] != '/':
		return fmt.Errorf("%w %q: must start with '/'", ErrTelemetryName, cmd)
	case len(cmd) > MaxTelemetryCmdLen:
		return fmt.Errorf("%w %q: longer than %d bytes", ErrTelemetryName, cmd, MaxTelemetryCmdLen)
	case reservedTelemetryCmds[cmd]:
		return fmt.Errorf("%w %q: DPDK's own command", ErrTelemetryName, cmd)
	case len(help) > MaxTelemetryHelpLen:
		return fmt.Errorf("%w %q: help text longer than %d bytes", ErrTelemetryName, cmd, MaxTelemetryHelpLen)
	}
	for i := 0; i < len(cmd); i++ {
		if !telemetryNameByte(cmd[i]) {
			return fmt.Errorf("%w %q: byte %q at %d: only letters, digits, '_' and '/' are allowed", ErrTelemetryName, cmd, cmd[i], i)
		}
	}
	for i := 0; i < len(help); i++ {
		if help[i] == 0 {
			return fmt.Errorf("%w %q: NUL in the help text", ErrTelemetryName, cmd)
		}
	}
	return nil
}

// telemetryNameByte reports whether DPDK allows b in command and value
// names.
func telemetryNameByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '/'
}

// sanitizeTelemetryName writes name as DPDK takes it into dst, NUL
// terminated: cut to MaxTelemetryNameLen bytes, every byte DPDK refuses
// replaced by '_'. B is byte or C's unsigned char.
func sanitizeTelemetryName[B ~uint8](dst *[MaxTelemetryNameLen + 1]B, name string) {
	n := min(len(name), MaxTelemetryNameLen)
	for i := 0; i < n; i++ {
		b := name[i]
		if !telemetryNameByte(b) {
			b = '_'
		}
		dst[i] = B(b)
	}
	dst[n] = 0
}

// telemetryLayout places the values of one reply within DPDK's limits: at
// most telemetryMaxEntries members per object and telemetryMaxOutput bytes
// of JSON. It reserves room for the TelemetryTruncatedKey member, so what
// does not fit is counted rather than lost without a word. Its memory is
// reused from one reply to the next.
type telemetryLayout struct {
	left    int // bytes of JSON still free
	members int // members of the top-level object, groups included
	groups  []telemetryGroup
	index   map[string]int // group name -> index in groups
	dropped uint64         // values that did not fit
}

// telemetryGroup is a nested object of a reply.
type telemetryGroup struct {
	members int
}

// Sizes of the JSON DPDK writes: a reply is {"<cmd>":{...}}, a member
// "<name>":<value> with a comma between members, a group's value an
// object {...}. Each member is charged a comma, which leaves a byte or
// two of slack; DPDK needs one more byte for the NUL of snprintf.
const (
	telemetryReplyFrame  = len(`{"":}`) + 1 + len(`{}`)
	telemetryMemberFrame = len(`"":,`)
	telemetryTruncatedSz = len(TelemetryTruncatedKey) + telemetryMemberFrame + 20 // 20 digits: any uint64
)

// reset starts the layout of a reply to cmd.
func (l *telemetryLayout) reset(cmd string) {
	l.left = telemetryMaxOutput - len(cmd) - telemetryReplyFrame - telemetryTruncatedSz
	l.members = 0
	l.groups = l.groups[:0]
	if l.index == nil {
		l.index = make(map[string]int)
	}
	clear(l.index)
	l.dropped = 0
}

// place decides where v goes. group is the index of v's group (in the
// order groups first appear) or -1 for the top level, and isNew says the
// group is v's and must be created first. ok is false when v does not fit;
// it is then counted in dropped.
func (l *telemetryLayout) place(v TelemetryValue) (group int, isNew, ok bool) {
	cost := min(len(v.Name), MaxTelemetryNameLen) + telemetryMemberFrame + decimalDigits(v.Value)
	if v.Group == "" {
		// One member stays free for TelemetryTruncatedKey.
		if l.members >= telemetryMaxEntries-1 || cost > l.left {
			l.dropped++
			return -1, false, false
		}
		l.members++
		l.left -= cost
		return -1, false, true
	}
	g, exists := l.index[v.Group]
	if exists {
		if l.groups[g].members >= telemetryMaxEntries || cost > l.left {
			l.dropped++
			return g, false, false
		}
		l.groups[g].members++
		l.left -= cost
		return g, false, true
	}
	cost += min(len(v.Group), MaxTelemetryNameLen) + telemetryMemberFrame + len(`{}`)
	if l.members >= telemetryMaxEntries-1 || cost > l.left {
		l.dropped++
		return -1, false, false
	}
	g = len(l.groups)
	l.index[v.Group] = g
	l.groups = append(l.groups, telemetryGroup{members: 1})
	l.members++
	l.left -= cost
	return g, true, true
}

// decimalDigits is the length of v in decimal.
func decimalDigits(v uint64) int {
	n := 1
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}
