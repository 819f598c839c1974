package api

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
)

// Backend is what the daemon implements to serve the control socket, one
// method per command. Methods run on the socket server's goroutines, several
// at a time; ctx ends when the client goes away or the command times out.
// Return an *Error to choose the error code (see Errorf); any other error is
// reported as CodeInternal.
type Backend interface {
	// Status is the relay at a glance (pool_relay status).
	Status(ctx context.Context) (Status, error)
	// Peers lists every peer with an account, sorted by id.
	Peers(ctx context.Context) ([]Peer, error)
	// Stats are the cumulative counters per port, queue, class and drop reason.
	Stats(ctx context.Context) (Stats, error)
	// Routes lists the relayed routes.
	Routes(ctx context.Context) ([]Route, error)
	// RouteAdd installs a static route and returns it as installed.
	RouteAdd(ctx context.Context, r RouteSpec) (Route, error)
	// RouteDel removes the route of a session (CodeNotFound if none).
	RouteDel(ctx context.Context, session string) error
	// Score is the relay's own score and its peers'.
	Score(ctx context.Context) (Score, error)
	// Cheques are the settlement entries (ledger.Ledger.Cheques), the
	// material of pool_relay cheques and of its settlement export.
	Cheques(ctx context.Context) ([]Cheque, error)
	// Enroll starts the enrollment handshake with the relay at an address
	// and returns the peer once enrolled.
	Enroll(ctx context.Context, address string) (Peer, error)
	// Unenroll closes a peer's session; its account (debt included) stays.
	Unenroll(ctx context.Context, peer string) (Unenrolled, error)
	// Stop shuts the daemon down once the response is sent.
	Stop(ctx context.Context) error
	// ConfigShow returns the running configuration and any pending one.
	ConfigShow(ctx context.Context) (ConfigState, error)
	// ConfigApply applies a configuration, tentatively when ConfirmWithin
	// is set (see package ctl/configctl).
	ConfigApply(ctx context.Context, a ConfigApplyArgs) (ConfigState, error)
	// ConfigConfirm makes the pending configuration permanent.
	ConfigConfirm(ctx context.Context) (ConfigState, error)
	// ConfigRollback restores the configuration before the pending one.
	ConfigRollback(ctx context.Context) (ConfigState, error)
	// Trace captures frames received on a port.
	Trace(ctx context.Context, a TraceArgs) (Trace, error)
	// JournalVerify verifies the change journal's chain.
	JournalVerify(ctx context.Context) (JournalSummary, error)
}

// handler runs one command: it decodes its args and calls the Backend.
type handler func(ctx context.Context, b Backend, args json.RawMessage) (any, error)

// noArgs adapts a command that takes no arguments; it still rejects unknown
// ones, so a mistyped option does not pass unnoticed.
func noArgs[R any](f func(Backend, context.Context) (R, error)) handler {
	return func(ctx context.Context, b Backend, args json.RawMessage) (any, error) {
		if err := decodeArgs(args, &struct{}{}); err != nil {
			return nil, err
		}
		return f(b, ctx)
	}
}

// withArgs adapts a command whose args decode into A.
func withArgs[A, R any](f func(Backend, context.Context, A) (R, error)) handler {
	return func(ctx context.Context, b Backend, args json.RawMessage) (any, error) {
		var a A
		if err := decodeArgs(args, &a); err != nil {
			return nil, err
		}
		return f(b, ctx, a)
	}
}

func empty(err error) (Empty, error) { return Empty{}, err }

var handlers = map[string]handler{
	CmdStatus:   noArgs(Backend.Status),
	CmdPeers:    noArgs(Backend.Peers),
	CmdStats:    noArgs(Backend.Stats),
	CmdRoutes:   noArgs(Backend.Routes),
	CmdRouteAdd: withArgs(Backend.RouteAdd),
	CmdRouteDel: withArgs(func(b Backend, ctx context.Context, a RouteDelArgs) (Empty, error) {
		if a.Session == "" {
			return Empty{}, Errorf(CodeInvalidArgument, "session is required")
		}
		return empty(b.RouteDel(ctx, a.Session))
	}),
	CmdScore:   noArgs(Backend.Score),
	CmdCheques: noArgs(Backend.Cheques),
	CmdEnroll: withArgs(func(b Backend, ctx context.Context, a EnrollArgs) (Peer, error) {
		if a.Address == "" {
			return Peer{}, Errorf(CodeInvalidArgument, "address is required")
		}
		return b.Enroll(ctx, a.Address)
	}),
	CmdUnenroll: withArgs(func(b Backend, ctx context.Context, a UnenrollArgs) (Unenrolled, error) {
		if a.Peer == "" {
			return Unenrolled{}, Errorf(CodeInvalidArgument, "peer is required")
		}
		return b.Unenroll(ctx, a.Peer)
	}),
	CmdStop:           noArgs(func(b Backend, ctx context.Context) (Empty, error) { return empty(b.Stop(ctx)) }),
	CmdConfigShow:     noArgs(Backend.ConfigShow),
	CmdConfigApply:    withArgs(Backend.ConfigApply),
	CmdConfigConfirm:  noArgs(Backend.ConfigConfirm),
	CmdConfigRollback: noArgs(Backend.ConfigRollback),
	CmdTrace: withArgs(func(b Backend, ctx context.Context, a TraceArgs) (Trace, error) {
		if a.Port == "" {
			return Trace{}, Errorf(CodeInvalidArgument, "port is required")
		}
		if a.Count < 1 || a.Count > MaxTraceFrames {
			return Trace{}, Errorf(CodeInvalidArgument, "count %d is out of range: use 1 to %d", a.Count, MaxTraceFrames)
		}
		if a.Snaplen < 0 || a.Timeout < 0 {
			return Trace{}, Errorf(CodeInvalidArgument, "snaplen and timeout must not be negative")
		}
		return b.Trace(ctx, a)
	}),
	CmdJournalVerify: noArgs(Backend.JournalVerify),
}

// Commands returns the command names Dispatch knows, sorted.
func Commands() []string {
	names := make([]string, 0, len(handlers))
	for n := range handlers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Dispatch decodes one request line and runs it on b. It never fails: every
// problem, from malformed JSON to a Backend error, becomes a failed Response.
func Dispatch(ctx context.Context, b Backend, line []byte) Response {
	req, err := Decode(line)
	if err != nil {
		return Failure(err)
	}
	return Run(ctx, b, req)
}

// Decode parses a request line and checks its version and command; the
// arguments are decoded by Run.
func Decode(line []byte) (Request, error) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&req); err != nil {
		return Request{}, Errorf(CodeBadRequest, "not a JSON request envelope: %v", err)
	}
	if dec.More() {
		return Request{}, Errorf(CodeBadRequest, "one JSON object per line")
	}
	if req.V != Version {
		return Request{}, Errorf(CodeUnsupportedVersion, "request version %d; this relay speaks version %d", req.V, Version)
	}
	if _, ok := handlers[req.Cmd]; !ok {
		return Request{}, Errorf(CodeUnknownCommand, "unknown command %q", req.Cmd)
	}
	return req, nil
}

// Run runs a decoded request on b.
func Run(ctx context.Context, b Backend, req Request) Response {
	h, ok := handlers[req.Cmd]
	if !ok {
		return Failure(Errorf(CodeUnknownCommand, "unknown command %q", req.Cmd))
	}
	res, err := h(ctx, b, req.Args)
	if err != nil {
		return Failure(err)
	}
	raw, err := json.Marshal(res)
	if err != nil {
		return Failure(Errorf(CodeInternal, "encoding the result: %v", err))
	}
	return Response{V: Version, OK: true, Result: raw}
}

// Mutating reports whether cmd changes the relay's state (as opposed to
// reading it): the socket server logs who ran these.
func Mutating(cmd string) bool {
	switch cmd {
	case CmdRouteAdd, CmdRouteDel, CmdEnroll, CmdUnenroll, CmdStop, CmdConfigApply, CmdConfigConfirm, CmdConfigRollback, CmdTrace:
		return true
	}
	return false
}
