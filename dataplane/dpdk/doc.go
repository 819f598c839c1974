// Package dpdk is the relay's thin cgo binding to DPDK 22.11 (Debian's
// libdpdk, linked dynamically through pkg-config). It is the only package
// of the project that uses cgo or unsafe; everything else builds with
// CGO_ENABLED=0, where this package compiles to stubs that return
// ErrNoDPDK.
//
// # Shape
//
// Init starts the EAL once per process from the [eal] configuration and
// the port devices, and returns the EAL through which everything else is
// made: per-socket mempools (Pools), ports (OpenPort: any PCI address or
// vdev string, N RX/TX queues, RSS masked by the device's abilities,
// descriptor counts, MTU, promiscuous mode; stats, xstats, link, MAC),
// rings for the punt and inject paths (NewRing), a worker's packet I/O
// (NewBurst) and the workers themselves (StartWorker). EAL.Close tears it
// all down and leaves nothing in /var/run/dpdk or the hugetlbfs mount.
//
// The shape follows figures measured on the relay's machines with
// throwaway probes (ARCHITECTURE.md, section 3): a Go loop making one cgo
// call per 32-frame burst ran 5-10% below a pure C loop on net_null; a
// burst array in Go memory cost ~30%; a worker thread without an EAL lcore
// id (so without a mempool cache) cost ~35%. Hence:
//
//   - A Burst keeps its mbuf arrays in DPDK memory, and Burst.Cycle is the
//     worker's one cgo call per burst: it sends what the worker queued with
//     Send, frees what it dropped (rte_pktmbuf_free_bulk), enqueues what it
//     punted, tops TX up from inject rings, and receives the next burst.
//   - Mbuf is read and written from Go at fixed offsets (checked against
//     the C compiler by TestMbufOffsets): Mbuf.Data is a zero-copy slice
//     over the frame, and the hot path makes no other cgo call.
//   - Workers are goroutines locked to an OS thread, pinned to a core and
//     registered with rte_thread_register.
//   - A worker with its own egress queues (package egress) opts in to two
//     behaviours of the same call: KeepRefused keeps the frames the PMD
//     refuses at the head of their TX buffer instead of freeing them (the
//     caller can take them back with Unsend), and CollectInject hands the
//     inject rings' frames to the worker (TakeInjected) instead of sending
//     them. The call also reads the TSC after the receive (Burst.TSC, in
//     EAL.TSCHz ticks): the burst's clock costs one instruction, where
//     time.Now measured 60-120 ns on these machines (BenchmarkClock in
//     package egress). Mbuf.Handle and MbufAt turn an mbuf into an integer
//     and back, which is sound for DPDK memory only.
//   - EAL.RegisterTelemetry answers DPDK telemetry commands (dpdk-telemetry.py)
//     from Go, for the relay's own counters; see telemetry.go.
//   - Hop MACs (AES-256-GMAC, crypto/hopmac's construction) are computed
//     in C when the CPU has AES-NI and PCLMULQDQ: GMACKey is a key expanded
//     once (intel-ipsec-mb's IMB_AES256_GCM_PRE, from Debian's
//     libipsec-mb-dev, and the powers of H) and shared read-only by the
//     workers, GMACBatch a worker's jobs for a burst, and GMACBatch.Verify
//     and Sign one cgo call each per burst (Sign also stores the UDP
//     checksum of a job added with AddSign, after the tag). hopmac.c computes the tag of a
//     short frame itself (one GHASH reduction per frame, the MAC field's
//     zero blocks skipped, E_K(J0) beside the GHASH chain) and hands the
//     middle of a long one to the library's GHASH: the library's direct
//     GMAC calls (INIT, UPDATE, FINALIZE) cost 41 ns per MAC at 128 B in a
//     burst against 17 ns this way, 88 against 83 ns at 1500 B (its job API twice
//     the direct calls; Go's GCM 47-54 and ~250 ns). GMACEngine says which
//     code path the library took, or ErrNoGMAC, and the caller keeps to Go.
//   - IO is the Burst's per-burst surface as a worker and its egress use
//     it (send, drop and punt a burst's frames at once, settle, collect,
//     flush): relay.Worker and egress.Port are generic over it, so that
//     package bursttest's in-memory IO runs them in tests without DPDK,
//     cgo or root. Its frames are GoMbufs, mbufs laid out as DPDK's in Go
//     memory, which the accessors read unchanged. Nothing generic calls
//     the IO per frame: a method of a type parameter goes through the
//     instantiation's dictionary and is never inlined.
//   - The C side is a set of ordinary functions in shim.c: DPDK's fast-path
//     calls are static inline, and rte_errno must be read in the call that
//     set it.
//
// # Go runtime settings
//
// TuneRuntime sets GOMAXPROCS to the number of EAL cores (one P per worker,
// which spins on it, and one for the control core) and GOGC to 400
// (workers do not allocate; rarer collections mean fewer stop-the-world
// pauses stalling them). PinThreads keeps the runtime's other threads on
// the control core. Both are documented where they are defined.
//
// # Ownership
//
// DPDK memory is never Go memory: mbufs, rings and burst arrays are
// allocated by DPDK and freed explicitly; Go holds pointers into them that
// the garbage collector ignores. An mbuf has one owner; handing it to
// Send, Drop, Punt, a ring or FreeBulk gives it away.
package dpdk
