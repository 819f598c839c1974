// Package bench holds the relay's benchmark drivers and their results: data
// plane rates side by side with dpdk-testpmd on the same vdev, control-plane
// and scheduler figures, the running daemon driven by the project's
// generator over vhost-user (bench/daemon, make bench-daemon), and the
// Pktgen-DPDK material in bench/pktgen.
package bench
