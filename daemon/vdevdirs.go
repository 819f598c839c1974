package daemon

import (
	"fmt"
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
