package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// socketDirs is the directories of the Unix sockets that the relay's vdev
// ports create as servers: a net_vhost port's iface= and a net_memif
// port's socket= (unless the socket is abstract). DPDK binds there and
// fails, with "failed to bind: No such file or directory; remove it and try
// again", when the directory is missing, which on a freshly booted machine
// /run/pool_relay is until the control socket is made, after the ports.
func socketDirs(devices []string) []string {
	var dirs []string
	for _, dev := range devices {
		name, args, _ := strings.Cut(dev, ",")
		var key string
		switch {
		case strings.HasPrefix(name, "net_vhost"):
			key = "iface"
		case strings.HasPrefix(name, "net_memif"):
			key = "socket"
		default:
			continue
		}
		abstract := strings.HasPrefix(name, "net_memif") // DPDK 22.11's default
		var path string
		for _, kv := range strings.Split(args, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch {
			case k == key:
				path = v
			case k == "socket-abstract":
				abstract = v != "no"
			}
		}
		if path == "" || abstract || !filepath.IsAbs(path) {
			continue
		}
		dirs = append(dirs, filepath.Dir(path))
	}
	return dirs
}

// makeSocketDirs creates socketDirs(devices) (mode 0750, as the control
// socket's), before DPDK probes the ports.
func makeSocketDirs(devices []string) error {
	for _, dir := range socketDirs(devices) {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("daemon: socket directory of a port: %w", err)
		}
	}
	return nil
}

// vdevIface is the kernel interface a vdev port attaches to (the iface= of
// net_af_xdp, net_af_packet and net_pcap), "" for other devices.
func vdevIface(dev string) string {
	name, args, _ := strings.Cut(dev, ",")
	if !strings.HasPrefix(name, "net_af_xdp") && !strings.HasPrefix(name, "net_af_packet") && !strings.HasPrefix(name, "net_pcap") {
		return ""
	}
	for _, kv := range strings.Split(args, ",") {
		if k, v, _ := strings.Cut(kv, "="); k == "iface" {
			return v
		}
	}
	return ""
}

// checkIfaces refuses ports whose kernel interface does not exist in this
// network namespace, naming it: DPDK's own report of it is "Failed to init
// internals" and a probe failing with "Operation not permitted", which
// does not say that the relay was started outside the namespace of its
// veths (ip netns exec) or that the interface is misspelt.
func checkIfaces(names, devices []string) error {
	var errs []error
	for i, dev := range devices {
		iface := vdevIface(dev)
		if iface == "" {
			continue
		}
		if _, err := net.InterfaceByName(iface); err != nil {
			errs = append(errs, fmt.Errorf("daemon: port %s: no network interface %q here (%s needs it; is the relay in the interface's network namespace, ip netns exec?)", names[i], iface, dev))
		}
	}
	return errors.Join(errs...)
}
