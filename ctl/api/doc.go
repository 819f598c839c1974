// Package api is the contract between the pool_relay CLI and the relay
// daemon: the versioned JSON envelopes exchanged over the control socket,
// the error codes (and the CLI exit codes they map to), the result types of
// every command, and Backend, the interface the daemon implements with one
// method per command.
//
// # Wire format
//
// A request is one JSON object on one line:
//
//	{"v":1,"cmd":"status","args":{...}}
//
// and so is its response, either
//
//	{"v":1,"ok":true,"result":...}
//	{"v":1,"ok":false,"error":{"code":"invalid_argument","message":"..."}}
//
// v is the protocol version. A server answers a request of another version
// with code unsupported_version instead of guessing what it meant, and a
// client refuses a response of another version; the version changes only when
// an existing field changes meaning (new commands and new fields do not).
// Arguments are decoded strictly: an unknown field is invalid_argument, so a
// newer CLI talking to an older daemon fails loudly instead of having an
// option silently ignored.
//
// The package does no I/O: Dispatch turns one request into one response by
// calling a Backend, and package ctl/socket carries the bytes.
package api
