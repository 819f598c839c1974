//go:build linux && cgo

package dpdk

// #include <stdlib.h>
// #include <rte_ethdev.h>
// #include "shim.h"
import "C"

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"unsafe"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/dataplane"
)

// rssWanted are the RSS hash functions the relay asks for: POOL travels in
// UDP and directly in IP (protocol 253, hashed by the "other" IPv4/IPv6
// types in RTE_ETH_RSS_IP), so hashing on addresses (and UDP ports) spreads
// distinct hops over the queues. Masked by what the device can do.
const rssWanted = C.RTE_ETH_RSS_IP | C.RTE_ETH_RSS_UDP

// Port is a started DPDK ethdev port.
type Port struct {
	e      *EAL
	log    zerolog.Logger
	id     uint16
	name   string
	device string
	driver string
	socket int
	rxq    int
	txq    int
	rxDesc int
	txDesc int
	// unplug: Close removes the device too, so the device string can be
	// opened again: every virtual device, and a PCI device OpenPort
	// hot-plugged (one the EAL was given stays bound to its driver).
	unplug bool
	closed bool
}

// OpenPort sets up and starts the port of cfg.Device: a device given to
// Init, or one probed now (hot-plugged) if no port has its name yet. It
// configures cfg.RxQueues and cfg.TxQueues queues (0 means workers), with
// RSS on the hash functions the device supports when there is more than
// one RX queue, descriptor counts adjusted to the device's limits, RX
// buffers from pools' pool for the port's socket, and then the MTU and
// promiscuous mode.
//
// What a PMD cannot do that the relay can live without (RSS, an MTU
// change, promiscuous mode: net_memif in 22.11 answers ENOTSUP to an MTU
// change) is logged as a warning, not a failed start.
func (e *EAL) OpenPort(cfg dataplane.PortConfig, workers int, pools *Pools) (*Port, error) {
	e.mu.Lock()
	err := e.checkLocked()
	e.mu.Unlock()
	if err != nil {
		return nil, err
	}
	name := PortName(cfg.Device)
	id, probed, err := findPort(name, cfg.Device)
	if err != nil {
		return nil, err
	}
	p := &Port{e: e, id: id, name: name, device: cfg.Device, unplug: probed || !IsPCI(cfg.Device),
		rxq: cfg.RxQueues, txq: cfg.TxQueues}
	// Until the port is started and recorded, a failure must not leave a
	// hot-plugged device behind.
	started := false
	defer func() {
		if !started && probed {
			p.remove()
		}
	}()
	if p.rxq == 0 {
		p.rxq = workers
	}
	if p.txq == 0 {
		p.txq = workers
	}
	var info C.struct_pr_dev_info
	if rc := C.pr_port_info(C.uint16_t(id), &info); rc < 0 {
		return nil, rteError("port "+name+": device info", rc)
	}
	p.driver = C.GoString(&info.driver[0])
	p.log = e.log.With().Str("port", name).Str("driver", p.driver).Logger()
	if p.rxq < 1 || p.txq < 1 || p.rxq > int(info.max_rx_queues) || p.txq > int(info.max_tx_queues) {
		return nil, fmt.Errorf("dpdk: port %s: %d RX and %d TX queues asked, the device has 1 to %d and 1 to %d",
			name, p.rxq, p.txq, info.max_rx_queues, info.max_tx_queues)
	}
	p.socket = int(C.rte_eth_dev_socket_id(C.uint16_t(id)))
	pool, err := pools.For(p.socket)
	if err != nil {
		return nil, fmt.Errorf("dpdk: port %s: %w", name, err)
	}
	if cfg.MTU > 0 && cfg.MTU+l2Overhead > pool.DataRoom()-Headroom {
		return nil, fmt.Errorf("dpdk: port %s: MTU %d needs %d-byte mbuf buffers, the pool has %d",
			name, cfg.MTU, cfg.MTU+l2Overhead+Headroom, pool.DataRoom())
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.checkLocked(); err != nil {
		return nil, err
	}
	for _, o := range e.ports {
		if o.id == id && !o.closed {
			return nil, fmt.Errorf("dpdk: port %s is already open", name)
		}
	}
	setup := C.struct_pr_port_setup{
		rx_queues: C.uint16_t(p.rxq),
		tx_queues: C.uint16_t(p.txq),
		rx_desc:   C.uint16_t(cfg.RxDescriptors),
		tx_desc:   C.uint16_t(cfg.TxDescriptors),
		socket:    C.int(p.socket),
		pool:      pool.c,
	}
	if p.rxq > 1 {
		setup.rss_hf = C.uint64_t(rssWanted) & info.flow_type_rss_offloads
		if setup.rss_hf == 0 {
			p.log.Warn().Int("rx_queues", p.rxq).
				Msg("device cannot hash IP or UDP (RSS): which RX queue gets a frame is up to the PMD")
		} else if setup.rss_hf != C.uint64_t(rssWanted) {
			p.log.Info().Uint64("rss_hf", uint64(setup.rss_hf)).Uint64("wanted", uint64(rssWanted)).
				Msg("RSS limited to the hash functions the device supports")
		}
	}
	if rc := C.pr_port_configure(C.uint16_t(id), &setup); rc < 0 {
		return nil, rteError(fmt.Sprintf("port %s: configure %d RX/%d TX queues", name, p.rxq, p.txq), rc)
	}
	p.rxDesc, p.txDesc = int(setup.rx_desc), int(setup.tx_desc)
	if cfg.MTU > 0 {
		if err := p.optional(fmt.Sprintf("set MTU %d", cfg.MTU), C.pr_port_set_mtu(C.uint16_t(id), C.uint16_t(cfg.MTU))); err != nil {
			return nil, err
		}
	}
	if rc := C.pr_port_start(C.uint16_t(id)); rc < 0 {
		return nil, rteError("port "+name+": start", rc)
	}
	if cfg.Promiscuous {
		if err := p.optional("enable promiscuous mode", C.pr_port_promiscuous(C.uint16_t(id))); err != nil {
			C.pr_port_stop(C.uint16_t(id))
			return nil, err
		}
	}
	e.ports = append(e.ports, p)
	started = true
	mac, _ := p.MAC()
	link, _ := p.Link()
	p.log.Info().Uint16("id", id).Int("socket", p.socket).Int("rx_queues", p.rxq).Int("tx_queues", p.txq).
		Int("rx_desc", p.rxDesc).Int("tx_desc", p.txDesc).Str("mac", net.HardwareAddr(mac[:]).String()).
		Bool("link_up", link.Up).Msg("port started")
	return p, nil
}

// findPort returns the port id of name, probing (hot-plugging) device
// first when no port has that name, and whether it did.
func findPort(name, device string) (id uint16, probed bool, err error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	if id := C.pr_port_by_name(cname); id >= 0 {
		return uint16(id), false, nil
	}
	cdev := C.CString(device)
	defer C.free(unsafe.Pointer(cdev))
	if rc := C.pr_dev_probe(cdev); rc < 0 {
		return 0, false, fmt.Errorf("%w: %s: %w", ErrNoPort, name, rteError("probe "+device, rc))
	}
	if id := C.pr_port_by_name(cname); id >= 0 {
		return uint16(id), true, nil
	}
	return 0, false, fmt.Errorf("%w: probing %q created no port named %s", ErrNoPort, device, name)
}

// remove unplugs the port's device from its bus.
func (p *Port) remove() error {
	bus := "vdev"
	if IsPCI(p.device) {
		bus = "pci"
	}
	cbus, cname := C.CString(bus), C.CString(p.name)
	defer C.free(unsafe.Pointer(cbus))
	defer C.free(unsafe.Pointer(cname))
	if rc := C.pr_dev_remove(cbus, cname); rc < 0 {
		return rteError("port "+p.name+": unplug", rc)
	}
	return nil
}

// optional turns the result of an optional setting into a warning when the
// PMD does not support it, and into an error otherwise.
func (p *Port) optional(what string, rc C.int) error {
	if rc >= 0 {
		return nil
	}
	err := rteError("port "+p.name+": "+what, rc)
	if errors.Is(err, ErrNotSupported) {
		p.log.Warn().Err(err).Msg("PMD does not support this; continuing without it")
		return nil
	}
	return err
}

// ID returns the DPDK port id.
func (p *Port) ID() uint16 { return p.id }

// Name returns the ethdev name (the device string up to its first comma).
func (p *Port) Name() string { return p.name }

// Driver returns the PMD's name, e.g. "net_null".
func (p *Port) Driver() string { return p.driver }

// Socket returns the port's NUMA socket (-1 for most virtual devices).
func (p *Port) Socket() int { return p.socket }

// Queues returns the numbers of RX and TX queues.
func (p *Port) Queues() (rx, tx int) { return p.rxq, p.txq }

// Descriptors returns the RX and TX ring sizes after the PMD adjusted them.
func (p *Port) Descriptors() (rx, tx int) { return p.rxDesc, p.txDesc }

// RxQueue returns RX queue i; it panics if the port has no such queue,
// which is a programming error.
func (p *Port) RxQueue(i int) Queue {
	if i < 0 || i >= p.rxq {
		panic(fmt.Sprintf("dpdk: port %s has no RX queue %d", p.name, i))
	}
	return Queue{Port: p.id, ID: uint16(i)}
}

// TxQueue returns TX queue i; it panics if the port has no such queue.
func (p *Port) TxQueue(i int) Queue {
	if i < 0 || i >= p.txq {
		panic(fmt.Sprintf("dpdk: port %s has no TX queue %d", p.name, i))
	}
	return Queue{Port: p.id, ID: uint16(i)}
}

// MAC returns the port's Ethernet address.
func (p *Port) MAC() ([6]byte, error) {
	var mac [6]byte
	if rc := C.pr_port_mac(C.uint16_t(p.id), (*C.uint8_t)(unsafe.Pointer(&mac[0]))); rc < 0 {
		return mac, rteError("port "+p.name+": MAC address", rc)
	}
	return mac, nil
}

// Link returns the link status without waiting for negotiation.
func (p *Port) Link() (Link, error) {
	var l C.struct_pr_link
	if rc := C.pr_port_link(C.uint16_t(p.id), &l); rc < 0 {
		return Link{}, rteError("port "+p.name+": link status", rc)
	}
	return Link{Up: l.up != 0, SpeedMbps: uint32(l.speed), FullDuplex: l.full_duplex != 0, Autoneg: l.autoneg != 0}, nil
}

// Stats returns the port's basic counters.
func (p *Port) Stats() (Stats, error) {
	var st C.struct_rte_eth_stats
	if rc := C.pr_port_stats(C.uint16_t(p.id), &st); rc < 0 {
		return Stats{}, rteError("port "+p.name+": stats", rc)
	}
	return Stats{
		RxPackets: uint64(st.ipackets), TxPackets: uint64(st.opackets),
		RxBytes: uint64(st.ibytes), TxBytes: uint64(st.obytes),
		RxMissed: uint64(st.imissed), RxErrors: uint64(st.ierrors),
		TxErrors: uint64(st.oerrors), RxNoMbuf: uint64(st.rx_nombuf),
	}, nil
}

func (p *Port) xstatNames() ([]string, error) {
	n := C.pr_port_xstats_names(C.uint16_t(p.id), nil, 0)
	if n < 0 {
		return nil, rteError("port "+p.name+": xstats names", n)
	}
	if n == 0 {
		return nil, nil
	}
	names := (*C.struct_rte_eth_xstat_name)(C.calloc(C.size_t(n), C.sizeof_struct_rte_eth_xstat_name))
	defer C.free(unsafe.Pointer(names))
	got := C.pr_port_xstats_names(C.uint16_t(p.id), names, C.uint(n))
	if got < 0 {
		return nil, rteError("port "+p.name+": xstats names", got)
	}
	out := make([]string, 0, int(min(got, n)))
	for _, xn := range unsafe.Slice(names, int(min(got, n))) {
		out = append(out, C.GoString(&xn.name[0]))
	}
	return out, nil
}

// XStats returns the port's extended statistics: the PMD's own counters by
// name, in the PMD's order. The names are read on each call, not once at
// start: some PMDs cannot name them until a peer attaches (net_vhost
// without a client answers EPERM), and a start-time warning about a
// statistic nothing had asked for misled operators. It is for the control
// core, never a worker.
func (p *Port) XStats() ([]XStat, error) {
	names, err := p.xstatNames()
	if err != nil {
		return nil, err
	}
	n := len(names)
	if n == 0 {
		return nil, nil
	}
	vals := (*C.uint64_t)(C.calloc(C.size_t(n), 8))
	defer C.free(unsafe.Pointer(vals))
	rc := C.pr_port_xstats(C.uint16_t(p.id), vals, C.uint(n))
	if rc < 0 {
		return nil, rteError("port "+p.name+": xstats", rc)
	}
	if int(rc) > n {
		return nil, &Error{Op: "port " + p.name + ": xstats", Errno: syscall.EAGAIN, Text: "the PMD's statistics changed since the port started"}
	}
	out := make([]XStat, int(rc))
	for i, v := range unsafe.Slice(vals, int(rc)) {
		out[i] = XStat{Name: names[i], Value: uint64(v)}
	}
	return out, nil
}

// Close stops and closes the port, releasing its queues and the mbufs in
// them, and unplugs a virtual device (and a PCI device OpenPort
// hot-plugged), which releases what its PMD holds (files, sockets) and lets
// the same device string be opened again. No worker may poll the port any
// more. A second Close returns nil.
func (p *Port) Close() error {
	p.e.mu.Lock()
	defer p.e.mu.Unlock()
	return p.closeLocked()
}

func (p *Port) closeLocked() error {
	if p.closed {
		return nil
	}
	p.closed = true
	var errs []error
	if rc := C.pr_port_stop(C.uint16_t(p.id)); rc < 0 {
		errs = append(errs, rteError("port "+p.name+": stop", rc))
	}
	if rc := C.pr_port_close(C.uint16_t(p.id)); rc < 0 {
		errs = append(errs, rteError("port "+p.name+": close", rc))
	}
	if p.unplug {
		errs = append(errs, p.remove())
	}
	p.log.Info().Msg("port closed")
	return errors.Join(errs...)
}
