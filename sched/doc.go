// Package sched is the egress scheduler: per-class bounded queues of packet
// handles, strict priority with a token-bucket cap on the upper classes, deficit
// round robin below, and a starvation floor so the lowest class is
// deprioritised but never blocked.
package sched
