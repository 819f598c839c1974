// Package poolrelay is the root of the POOL relay appliance. It holds no code,
// only the repository guard tests (formatting, package docs, import rules and
// the layering between the trees); the relay itself is in cmd/ (commands),
// daemon/ (the process assembly), dataplane/, sched/, ledger/, crypto/,
// control/ (the relay's control core), pool/ (the control protocol, shared
// with end nodes), ctl/ (the operator surface) and configs/.
package poolrelay
