package daemon

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The directories of the sockets that vhost-user and memif ports create
// are made before DPDK binds them; abstract memif sockets, relative paths
// and other devices need none.
func TestSocketDirs(t *testing.T) {
	got := socketDirs([]string{
		"net_vhost0,iface=/run/pool_relay/bench-p0.sock,queues=1",
		"net_memif0,role=server,socket=/run/pool/p0.sock,socket-abstract=no",
		"net_memif1,role=server,socket=/run/pool/p1.sock", // abstract by default
		"net_vhost1,iface=relative.sock",
		"0000:03:00.0",
		"net_af_xdp0,iface=veth0",
		"net_null0",
	})
	want := []string{"/run/pool_relay", "/run/pool"}
	if !slices.Equal(got, want) {
		t.Errorf("socketDirs = %q, want %q", got, want)
	}

	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := makeSocketDirs([]string{"net_vhost0,iface=" + filepath.Join(dir, "p0.sock")}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
		t.Errorf("%s: %v %v, want a 0750 directory", dir, fi, err)
	}
}

// A port on a kernel interface that is not there is refused by name before
// DPDK probes it; interfaces that exist, and devices without one, pass.
func TestCheckIfaces(t *testing.T) {
	err := checkIfaces([]string{"p0", "p1", "p2", "p3"}, []string{
		"net_af_xdp0,iface=lo,start_queue=0,queue_count=1",
		"net_af_packet0,iface=nosuch-veth9,qpairs=1",
		"net_vhost0,iface=/run/pool_relay/x.sock",
		"net_null0",
	})
	if err == nil || !strings.Contains(err.Error(), `port p1: no network interface "nosuch-veth9" here`) || strings.Contains(err.Error(), "p0") || strings.Contains(err.Error(), "p2") {
		t.Errorf("err = %v, want p1's interface named, and only it", err)
	}
	if err := checkIfaces([]string{"p0"}, []string{"net_pcap0,iface=lo"}); err != nil {
		t.Errorf("lo: %v", err)
	}
}
