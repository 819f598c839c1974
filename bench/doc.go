// Package bench holds the relay's benchmark drivers and their results: data
// plane rates side by side with dpdk-testpmd on the same vdev, control-plane
// and scheduler figures, and the Pktgen-DPDK material in bench/pktgen.
package bench
