// Package ctl is the relay's operator surface, one job per subpackage:
//
//   - api: the contract between the pool_relay CLI and the running relay
//     (JSON envelopes, error and exit codes, result types, the Backend the
//     process implements);
//   - socket: the Unix control socket that carries api's requests, with
//     peer-credential checks and per-user connection limits;
//   - metrics: the Prometheus exporter over the same snapshots as the socket;
//   - configctl: configuration apply, confirm and automatic rollback.
//
// Nothing here starts the relay or speaks to a peer: the process is
// assembled by package daemon, which implements api.Backend and hands these
// packages their settings (the [ctl] section, configs.CtlConfig), and the
// relay-to-relay protocol is package control over pool/proto and
// pool/transport. The root guard tests keep it so: no ctl package imports
// daemon, and configs imports no ctl package.
//
// This package has no code.
package ctl
