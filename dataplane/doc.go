// Package dataplane is the relay's packet path: configuration of the EAL,
// ports and workers, and (in its subpackages) the wire codec, the DPDK binding,
// the lock-free route table, per-core counters and the worker loop.
//
// Workers never lock, log or allocate per packet. The control core owns all
// mutable state and publishes immutable snapshots that workers read through an
// atomic pointer.
package dataplane
