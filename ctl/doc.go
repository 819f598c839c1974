// Package ctl is the relay's control plane as operators reach it: the
// configuration of the control socket and the metrics listener. The control
// socket server and client, and the control core that owns peers, heartbeats
// and the ledger, live in its subpackages.
package ctl
