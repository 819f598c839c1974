// Package pool is the POOL control protocol as relays and end nodes both
// speak it, one job per subpackage:
//
//   - proto: how handshakes and the sealed messages of a session (terms,
//     routes, cheques, heartbeats) ride in POOL frames on the control
//     channel;
//   - transport: how those frames reach the network, over a UDP socket or
//     the relay data plane's punt and inject rings.
//
// The relay's control core (package control) and the end-node library
// (package endnode) are its two users. It depends on the codecs and
// cryptography below it (dataplane/wire, crypto, the ledger's account,
// cheque and journal formats) and on nothing of the relay's process: the
// root guard tests refuse an import of control, daemon, ctl, configs or the
// data plane's engine from here or from endnode.
//
// This package has no code.
package pool
