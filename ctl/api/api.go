package api

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Version is the protocol version this package speaks.
const Version = 1

// MaxRequestSize bounds one request line, newline included. The largest
// legitimate request is config.apply, which carries a configuration file:
// default.toml is about 10 KiB, so 1 MiB leaves room for any real file while
// keeping a misbehaving client from making the daemon buffer without limit.
const MaxRequestSize = 1 << 20

// MaxResponseSize bounds one response line as the client reads it. A trace
// of MaxTraceFrames jumbo frames, base64-encoded, is the largest result.
const MaxResponseSize = 64 << 20

// Command names, the cmd field of a request.
const (
	CmdStatus         = "status"
	CmdPeers          = "peers"
	CmdStats          = "stats"
	CmdRoutes         = "routes"
	CmdRouteAdd       = "route.add"
	CmdRouteDel       = "route.del"
	CmdScore          = "score"
	CmdCheques        = "cheques"
	CmdEnroll         = "enroll"
	CmdUnenroll       = "unenroll"
	CmdStop           = "stop"
	CmdConfigShow     = "config.show"
	CmdConfigApply    = "config.apply"
	CmdConfigConfirm  = "config.confirm"
	CmdConfigRollback = "config.rollback"
	CmdTrace          = "trace"
	CmdJournalVerify  = "journal.verify"
)

// Request is the envelope of a request.
type Request struct {
	V    int             `json:"v"`
	Cmd  string          `json:"cmd"`
	Args json.RawMessage `json:"args,omitempty"`
}

// Response is the envelope of a response: exactly one of Result (OK true)
// and Error (OK false) is set.
type Response struct {
	V      int             `json:"v"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
}

// Code classifies an error. Codes are part of the protocol: scripts and the
// CLI's exit code depend on them, so they are never renamed.
type Code string

// Error codes.
const (
	// CodeBadRequest: the request is not a JSON envelope.
	CodeBadRequest Code = "bad_request"
	// CodeTooLarge: the request exceeds MaxRequestSize.
	CodeTooLarge Code = "too_large"
	// CodeUnsupportedVersion: the request's v is not Version.
	CodeUnsupportedVersion Code = "unsupported_version"
	// CodeUnknownCommand: no such cmd.
	CodeUnknownCommand Code = "unknown_command"
	// CodeInvalidArgument: the args do not decode or make no sense (a bad
	// peer id, a config file that does not validate, ...).
	CodeInvalidArgument Code = "invalid_argument"
	// CodePermissionDenied: the connecting user may not use the socket.
	CodePermissionDenied Code = "permission_denied"
	// CodeNotFound: the named peer, route or port does not exist.
	CodeNotFound Code = "not_found"
	// CodeConflict: the command does not fit the current state (confirm with
	// no configuration pending, apply while one is pending, ...).
	CodeConflict Code = "conflict"
	// CodeUnavailable: the daemon cannot do this now (shutting down, or a
	// feature this build or mode lacks, such as trace without a data plane).
	CodeUnavailable Code = "unavailable"
	// CodeInternal: anything else; the message says what.
	CodeInternal Code = "internal"
)

// Exit codes of the pool_relay CLI, shared with cmd/pool_relay.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// ExitCode is the CLI exit code for an error of code c: 2 when the request
// itself was wrong (the operator fixes the command line), 1 when the relay
// refused or failed to do something it understood.
func (c Code) ExitCode() int {
	switch c {
	case CodeBadRequest, CodeTooLarge, CodeUnsupportedVersion, CodeUnknownCommand, CodeInvalidArgument:
		return ExitUsage
	}
	return ExitFailure
}

// Error is a coded error, the error member of a failed response. Backend
// methods return one to choose the code; any other error is reported as
// CodeInternal with its text.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// Errorf returns an *Error with code c.
func Errorf(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...)}
}

// Error is "api: code: message".
func (e *Error) Error() string { return "api: " + string(e.Code) + ": " + e.Message }

// Is makes errors.Is(err, ErrNotFound) and the like match any *Error of the
// sentinel's code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Code == e.Code
}

// Sentinels for errors.Is: an *Error matches the sentinel of its code.
var (
	ErrBadRequest         = &Error{Code: CodeBadRequest}
	ErrTooLarge           = &Error{Code: CodeTooLarge}
	ErrUnsupportedVersion = &Error{Code: CodeUnsupportedVersion}
	ErrUnknownCommand     = &Error{Code: CodeUnknownCommand}
	ErrInvalidArgument    = &Error{Code: CodeInvalidArgument}
	ErrPermissionDenied   = &Error{Code: CodePermissionDenied}
	ErrNotFound           = &Error{Code: CodeNotFound}
	ErrConflict           = &Error{Code: CodeConflict}
	ErrUnavailable        = &Error{Code: CodeUnavailable}
	ErrInternal           = &Error{Code: CodeInternal}
)

// AsError returns err as an *Error: itself if it is one (or wraps one),
// otherwise CodeInternal with err's text.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Message: err.Error()}
}

// Failure returns the response carrying err.
func Failure(err error) Response {
	return Response{V: Version, Error: AsError(err)}
}
