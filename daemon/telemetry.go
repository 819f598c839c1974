package daemon

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/control"
	"github.com/poolrelay/poolrelay/dataplane/counters"
	"github.com/poolrelay/poolrelay/dataplane/dpdk"
	"github.com/poolrelay/poolrelay/dataplane/relay"
)

// registerTelemetry answers DPDK telemetry (dpdk-telemetry.py -f PREFIX)
// with the relay's own counters: /poolrelay/ports (the devices' counters,
// as /ethdev/stats has them), /poolrelay/drops,
// /poolrelay/peers[,first slot] and /poolrelay/control. The answers read the
// devices' counters, the published counters and the control core's atomics
// only, so a client never waits for a worker or the core goroutine. DPDK answers one request at a
// time per EAL (the binding holds its lock), so the closures reuse their
// buffers without one of their own.
func registerTelemetry(eal *dpdk.EAL, eng *relay.Engine, core *control.Core, log zerolog.Logger) error {
	set, ports := eng.Counters(), eng.Ports()
	var (
		portBuf []dpdk.Stats
		dropBuf []uint64
		peerBuf []counters.Peer
		keys    []string
	)
	type value = dpdk.TelemetryValue
	cmds := []struct {
		cmd, help string
		fn        dpdk.TelemetryFunc
	}{
		{"/poolrelay/ports", "Packets and bytes received and sent per port. No parameters", func(_ string, dst []value) ([]value, error) {
			// The device's counters, as /ethdev/stats has them: the
			// control core's frames included.
			var err error
			if portBuf, err = eng.PortStats(portBuf[:0]); err != nil {
				return dst, err
			}
			for i, p := range portBuf {
				name := "port" + strconv.Itoa(i)
				if i < len(ports) {
					name = ports[i].Name
				}
				dst = append(dst,
					value{Group: name, Name: "rx_packets", Value: p.RxPackets}, value{Group: name, Name: "rx_bytes", Value: p.RxBytes},
					value{Group: name, Name: "tx_packets", Value: p.TxPackets}, value{Group: name, Name: "tx_bytes", Value: p.TxBytes})
			}
			return dst, nil
		}},
		{"/poolrelay/drops", "Frames dropped per reason. No parameters", func(_ string, dst []value) ([]value, error) {
			dropBuf = set.AllDrops(dropBuf[:0])
			for i, n := range dropBuf {
				dst = append(dst, value{Name: relay.Reason(i).String(), Value: n})
			}
			return dst, nil
		}},
		{"/poolrelay/peers", "Relayed for and towards each active peer slot. Parameter: first slot", func(params string, dst []value) ([]value, error) {
			first := 0
			if params != "" {
				n, err := strconv.Atoi(params)
				if err != nil || n < 0 {
					return dst, fmt.Errorf("bad first slot %q", params)
				}
				first = n
			}
			peerBuf = set.AllPeers(peerBuf[:0])
			for slot := first; slot < len(peerBuf); slot++ {
				p := peerBuf[slot]
				if p == (counters.Peer{}) {
					continue
				}
				g := strconv.Itoa(slot)
				dst = append(dst,
					value{Group: g, Name: "for_packets", Value: p.ForPackets}, value{Group: g, Name: "for_bytes", Value: p.ForBytes},
					value{Group: g, Name: "towards_packets", Value: p.ToPackets}, value{Group: g, Name: "towards_bytes", Value: p.ToBytes})
			}
			return dst, nil
		}},
		{"/poolrelay/control", "Control-plane counters (handshakes, heartbeats, routes, cheques). No parameters", func(_ string, dst []value) ([]value, error) {
			m := core.Counters()
			keys = keys[:0]
			for k := range m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				dst = append(dst, value{Name: k, Value: m[k]})
			}
			return dst, nil
		}},
	}
	for _, c := range cmds {
		if err := eal.RegisterTelemetry(c.cmd, c.help, c.fn); err != nil {
			return fmt.Errorf("daemon: telemetry: %w", err)
		}
	}
	if p := eal.TelemetrySocket(); p != "" {
		log.Info().Str("socket", p).Msg("telemetry: /poolrelay/ commands registered")
	} else {
		log.Warn().Msg("telemetry: the EAL has no socket (--no-telemetry?): /poolrelay/ commands unreachable")
	}
	return nil
}
