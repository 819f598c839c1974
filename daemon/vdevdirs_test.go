package daemon

import (
	"os"
	"path/filepath"
	"slices"
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
