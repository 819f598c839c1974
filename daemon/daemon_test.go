package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/configs"
	"github.com/poolrelay/poolrelay/ctl/api"
	"github.com/poolrelay/poolrelay/ctl/socket"
	"github.com/poolrelay/poolrelay/internal/logging"
	"github.com/poolrelay/poolrelay/ledger/event"
	"github.com/poolrelay/poolrelay/ledger/journal"
)

// TestDaemon runs the whole relay process in-process on two quiet net_ring
// ports and drives it over its control socket as the CLI would: status,
// metrics, a refused configuration, a tentative one rolled back by its
// timer, a confirmed one saved to disk, stop. One daemon per test process:
// DPDK's EAL starts once per process.
func TestDaemon(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("the daemon test needs root (DPDK); CI runs as root")
		}
		t.Skip("skipping: the daemon needs root (DPDK)")
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "relay.toml")
	text := testConfig(dir, "5s")
	// 0644, not the 0640 the daemon gives a file it creates: a
	// confirmation must keep the operator's mode.
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Parse(cfgPath, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan *Daemon, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), Options{
			Config: cfg, ConfigText: text, ConfigPath: cfgPath, Log: logging.Nop(), Version: "test",
			Ready: func(d *Daemon) { ready <- d },
		})
	}()
	var d *Daemon
	select {
	case d = <-ready:
	case err := <-done:
		t.Fatalf("daemon did not start: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("daemon did not start within 60 s")
	}
	ctx := context.Background()
	c := &socket.Client{Path: d.SocketPath()}

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Identity == "" || len(st.Ports) != 2 || st.Ports[0].Name != "p0" || st.Version != "test" {
		t.Errorf("status %+v", st)
	}
	if _, err := c.Peers(ctx); err != nil {
		t.Errorf("peers: %v", err)
	}
	if _, err := c.Stats(ctx); err != nil {
		t.Errorf("stats: %v", err)
	}

	// Metrics: served on the port the kernel chose.
	resp, err := http.Get("http://" + d.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "pool_relay_") {
		t.Errorf("metrics without pool_relay_ series:\n%.400s", body)
	}

	// The egress class queues show in stats, one row per port, queue and
	// class, once the workers made them: they do as they start, which on a
	// loaded machine can be after Ready.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st, err := c.Stats(ctx)
		if err == nil && len(st.Queues) == 2*4 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("stats: %d queue rows, %v; want 2 ports x 4 classes", len(st.Queues), err)
			break
		}
	}
	// trace: a quiet port gives an empty capture when its time is up; an
	// unknown port is refused.
	if tr, err := c.Trace(ctx, api.TraceArgs{Port: "p0", Count: 4, Timeout: api.Duration(200 * time.Millisecond)}); err != nil || len(tr.Frames) != 0 || tr.LinkType != 1 {
		t.Errorf("trace of a quiet port: %+v, %v", tr, err)
	}
	if _, err := c.Trace(ctx, api.TraceArgs{Port: "p9", Count: 4}); !errors.As(err, new(*api.Error)) {
		t.Errorf("trace of an unknown port: %v", err)
	}

	// Port counters are the device's: frames the control core sends (here
	// the ARP requests and INITs of an enrollment nobody answers) count on
	// the port, in stats and in status's rates.
	ectx, ecancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	if _, err := c.Enroll(ectx, "192.0.2.7:9254"); err == nil {
		t.Error("enrolled with no one")
	}
	ecancel()
	if st, err := c.Stats(ctx); err != nil || len(st.Ports) != 2 || st.Ports[0].TxPackets == 0 {
		t.Errorf("stats after the control core sent on p0: %+v, %v", st.Ports, err)
	}
	// Rates are sampled once a second: one sample after the sends shows them.
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st, err := c.Status(ctx)
		if err == nil && st.Ports[0].TxPPS > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("status rates after the control core sent on p0: %+v, %v", st.Ports, err)
			break
		}
	}

	// DPDK telemetry answers the relay's own commands.
	tel, err := net.Dial("unixpacket", "/var/run/dpdk/"+cfg.EAL.FilePrefix+"/dpdk_telemetry.v2")
	if err != nil {
		t.Fatalf("telemetry socket: %v", err)
	}
	buf := make([]byte, 16384)
	if _, err := tel.Read(buf); err != nil { // the greeting
		t.Fatal(err)
	}
	for _, cmd := range []string{"/poolrelay/ports", "/poolrelay/drops", "/poolrelay/control"} {
		if _, err := tel.Write([]byte(cmd)); err != nil {
			t.Fatal(err)
		}
		n, err := tel.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(buf[:n]), `{"`+cmd+`":{`) {
			t.Errorf("telemetry %s: %s", cmd, buf[:n])
		}
		if cmd == "/poolrelay/ports" && !strings.Contains(string(buf[:n]), `"p0":{"rx_packets":`) {
			t.Errorf("telemetry %s: %s", cmd, buf[:n])
		}
	}
	tel.Close()

	// A configuration that changes what needs a restart is refused whole.
	refused := strings.Replace(text, "memory_mb = 256", "memory_mb = 512", 1)
	_, err = c.ConfigApply(ctx, api.ConfigApplyArgs{Config: refused})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeConflict || !strings.Contains(err.Error(), "[eal]") {
		t.Errorf("apply changing [eal]: %v, want a conflict naming [eal]", err)
	}
	// A broken one gets the line-numbered problems.
	if _, err := c.ConfigApply(ctx, api.ConfigApplyArgs{Config: text + "\nbogus = 1\n"}); !errors.As(err, &ae) || ae.Code != api.CodeInvalidArgument {
		t.Errorf("apply of a broken file: %v", err)
	}

	// Tentative, not confirmed: rolled back by its timer.
	next := testConfig(dir, "2s")
	s, err := c.ConfigApply(ctx, api.ConfigApplyArgs{Config: next, ConfirmWithin: api.Duration(300 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	if s.Pending == nil || s.Config != next {
		t.Fatalf("after a tentative apply: %+v", s)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err = c.ConfigShow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.Pending == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pending configuration never rolled back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s.Config != text {
		t.Errorf("after the rollback the running configuration is not the first one")
	}

	// Tentative, then confirmed: permanent and saved where it came from.
	if _, err := c.ConfigApply(ctx, api.ConfigApplyArgs{Config: next, ConfirmWithin: api.Duration(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if s, err = c.ConfigConfirm(ctx); err != nil || s.Pending != nil || s.Config != next {
		t.Fatalf("confirm: %+v, %v", s, err)
	}
	if saved, _ := os.ReadFile(cfgPath); string(saved) != next || s.SavedTo != cfgPath {
		t.Errorf("confirmed configuration not saved to %s (saved_to %q)", cfgPath, s.SavedTo)
	}
	if fi, err := os.Stat(cfgPath); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("confirmed configuration file's mode: %v, %v; want 0644 kept", fi.Mode(), err)
	}
	if _, err := c.ConfigConfirm(ctx); !errors.As(err, &ae) || ae.Code != api.CodeConflict {
		t.Errorf("confirm with nothing pending: %v", err)
	}

	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrStopped) {
			t.Fatalf("Run returned %v, want ErrStopped", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not stop within 30 s")
	}
	if _, err := os.Stat(d.SocketPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
	if left, _ := filepath.Glob("/var/run/dpdk/" + cfg.EAL.FilePrefix + "*"); len(left) > 0 {
		t.Errorf("DPDK runtime files left behind: %v", left)
	}

	// Every configuration step is in the journal, the rollback as ROLLBACK.
	var kinds []string
	if _, err := journal.Verify(cfg.Ledger.JournalPath(cfg.Node.DataDir), func(r *journal.Record) error {
		if r.Type == event.Config || r.Type == event.Rollback {
			b, err := r.Event()
			if err != nil {
				return err
			}
			kinds = append(kinds, r.Type.String()+":"+strings.SplitN(b.(*event.Text).Note, ":", 2)[0])
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := "CONFIG:loaded CONFIG:applied ROLLBACK:expired CONFIG:applied CONFIG:confirmed"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("journalled configuration steps %q, want %q", got, want)
	}
}

// testConfig is a relay on two net_ring ports (quiet: nothing arrives that
// the relay did not send), its state under dir.
func testConfig(dir, heartbeat string) string {
	return fmt.Sprintf(`[log]
level = "warn"

[node]
data_dir = %q

[eal]
cores = "0-1"
no_huge = true
memory_mb = 256
file_prefix = "daemon_test_%d"

[dataplane]
mbufs = 4095
mbuf_cache = 128
max_routes = 4096
idle_sleep = "1ms"

[[port]]
name = "p0"
device = "net_ring0"
addresses = ["192.0.2.1/24"]

[[port]]
name = "p1"
device = "net_ring1"
addresses = ["198.51.100.1/24"]

[ctl]
socket = %q
metrics_listen = "127.0.0.1:0"

[control]
heartbeat_interval = %q
`, filepath.Join(dir, "data"), os.Getpid(), filepath.Join(dir, "ctl.sock"), heartbeat)
}
