// Package vdevtest proves that DPDK's kernel-interface PMDs, net_af_packet
// and net_af_xdp, work with the project's binding on veth pairs: a trivial
// forwarder on the root-namespace ends of a netns.Line moves UDP datagrams
// from a sender namespace to a receiver namespace, and every frame is
// accounted for. It holds only tests (one EAL per test process, so it is a
// package of its own) and the device strings they found to work.
package vdevtest

import "strconv"

// AFPacketDevice returns the device string that works for a veth end:
// one queue pair; the PMD's defaults (4096-byte blocks, 2048-byte frames,
// 512 frames per ring) are enough for a test's rates.
func AFPacketDevice(id int, iface string) string {
	return "net_af_packet" + strconv.Itoa(id) + ",iface=" + iface + ",qpairs=1"
}

// AFXDPDevice returns the device string that works for a veth end: queue 0
// only (a veth has one queue unless created with numrxqueues). Measured on
// kernel 6.18 with Debian's DPDK 22.11 and libxdp:
//
//   - The PMD attaches its XDP program in native mode ("xdp" in `ip -d link`):
//     veth has a driver XDP path, and frames the PMD sends go through the
//     veth's ordinary transmit path, so the peer needs no XDP program.
//   - Each net_af_xdp port needs a mempool of its own (its own dpdk.Pools):
//     the PMD registers its RX pool's memory as the socket's UMEM, and a
//     second port on the same pool fails with "Failed to configure xdp
//     socket" (EINVAL from queue setup). Frames sent from another pool are
//     copied into the port's UMEM.
//   - Without a bpffs at /sys/fs/bpf libxdp logs that it cannot use its
//     dispatcher and loads the program alone, which is all one socket per
//     interface needs.
func AFXDPDevice(id int, iface string) string {
	return "net_af_xdp" + strconv.Itoa(id) + ",iface=" + iface + ",start_queue=0,queue_count=1"
}
