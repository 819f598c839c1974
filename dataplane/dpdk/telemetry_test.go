//go:build linux && cgo

package dpdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The telemetry tests talk to the test process's own telemetry socket as
// dpdk-telemetry.py does. Commands cannot be unregistered and the tests may
// run several times in one process (-count), so every command name carries
// a sequence number.

var telemetrySeq atomic.Int64

// telemetryName returns a command name no other test of the process uses.
func telemetryName(base string) string {
	return fmt.Sprintf("/poolrelay_test/%s%d", base, telemetrySeq.Add(1))
}

// telemetryClient is one connection to the telemetry socket.
type telemetryClient struct {
	t        testing.TB
	conn     *net.UnixConn
	greeting struct {
		Version      string `json:"version"`
		PID          int    `json:"pid"`
		MaxOutputLen int    `json:"max_output_len"`
	}
	buf []byte
}

// dialTelemetry connects to the EAL's telemetry socket and reads the
// greeting.
func dialTelemetry(t testing.TB, e *EAL) *telemetryClient {
	t.Helper()
	path := e.TelemetrySocket()
	if path == "" {
		t.Fatal("the EAL has no telemetry socket")
	}
	conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	c := &telemetryClient{t: t, conn: conn, buf: make([]byte, 64<<10)}
	t.Cleanup(func() { conn.Close() })
	if err := json.Unmarshal(c.read(), &c.greeting); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	return c
}

// read reads one message: SOCK_SEQPACKET keeps DPDK's writes whole.
func (c *telemetryClient) read() []byte {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.conn.Read(c.buf)
	if err != nil {
		c.t.Fatalf("telemetry read: %v", err)
	}
	return c.buf[:n]
}

// raw sends req and returns the reply's bytes.
func (c *telemetryClient) raw(req string) []byte {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(req)); err != nil {
		c.t.Fatalf("telemetry write %q: %v", req, err)
	}
	return c.read()
}

// query sends req and returns the value under the command's key, numbers
// as json.Number so that uint64s arrive exact.
func (c *telemetryClient) query(req string) any {
	c.t.Helper()
	out := c.raw(req)
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var reply map[string]any
	if err := dec.Decode(&reply); err != nil {
		c.t.Fatalf("reply to %q: %v: %s", req, err, out)
	}
	cmd, _, _ := strings.Cut(req, ",")
	v, ok := reply[cmd]
	if !ok || len(reply) != 1 {
		c.t.Fatalf("reply to %q is not keyed by the command: %s", req, out)
	}
	return v
}

// object parses a JSON object whose numbers are json.Number.
func object(t testing.TB, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestTelemetryCommand registers a command with top-level and grouped
// values and reads it back as a client would: greeting, reply, listing,
// help and parameters.
func TestTelemetryCommand(t *testing.T) {
	e := needDPDK(t)
	cmd := telemetryName("values")
	var gotParams atomic.Pointer[string]
	err := e.RegisterTelemetry(cmd, `Test values; "quoted"`, func(params string, dst []TelemetryValue) ([]TelemetryValue, error) {
		gotParams.Store(&params)
		return append(dst,
			TelemetryValue{Name: "frames", Value: 42},
			TelemetryValue{Group: "net_null0", Name: "rx_packets", Value: 1},
			TelemetryValue{Group: "net_null0", Name: "rx_bytes", Value: 128},
			TelemetryValue{Name: "max", Value: math.MaxUint64},
			TelemetryValue{Group: "net-null.1", Name: "rx_packets", Value: 2},
			TelemetryValue{Group: "net_null0", Name: "tx packets", Value: 3},
			TelemetryValue{Name: strings.Repeat("n", 200), Value: 7},
		), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c := dialTelemetry(t, e)
	if g := c.greeting; !strings.HasPrefix(g.Version, "DPDK 22.11") || g.PID != os.Getpid() || g.MaxOutputLen != telemetryMaxOutput {
		t.Errorf("greeting %+v: want DPDK 22.11, pid %d, max_output_len %d", g, os.Getpid(), telemetryMaxOutput)
	}
	want := object(t, `{"frames": 42, "max": 18446744073709551615,
		"net_null0": {"rx_packets": 1, "rx_bytes": 128, "tx_packets": 3},
		"net_null_1": {"rx_packets": 2},
		"`+strings.Repeat("n", MaxTelemetryNameLen)+`": 7}`)
	if got := c.query(cmd); !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %v\nwant %v", cmd, got, want)
	}
	if p := gotParams.Load(); p == nil || *p != "" {
		t.Errorf("params without a comma: %v, want empty", p)
	}
	c.query(cmd + ",port=3,all")
	if p := gotParams.Load(); *p != "port=3,all" {
		t.Errorf("params %q, want %q", *p, "port=3,all")
	}

	list, ok := c.query("/").([]any)
	if !ok || !slices.Contains(list, any(cmd)) {
		t.Errorf("/ = %v: %s missing", list, cmd)
	}
	help := c.query("/help," + cmd)
	if want := map[string]any{cmd: `Test values; "quoted"`}; !reflect.DeepEqual(help, want) {
		t.Errorf("/help,%s = %v, want %v", cmd, help, want)
	}
}

// TestTelemetryBadCommand checks that what DPDK would refuse (or list
// twice) is refused before it gets there, and never shows up in the list.
func TestTelemetryBadCommand(t *testing.T) {
	e := needDPDK(t)
	fn := func(_ string, dst []TelemetryValue) ([]TelemetryValue, error) { return dst, nil }
	dup := telemetryName("dup")
	if err := e.RegisterTelemetry(dup, "", fn); err != nil {
		t.Fatal(err)
	}
	if err := e.RegisterTelemetry(dup, "", fn); !errors.Is(err, ErrTelemetryExists) {
		t.Errorf("second registration of %s: %v, want ErrTelemetryExists", dup, err)
	}
	bad := []string{
		"", "poolrelay_test", "/poolrelay-test/x", "/poolrelay test", "/poolrelay_test,x",
		"/" + strings.Repeat("a", MaxTelemetryCmdLen), "/", "/info", "/help",
	}
	for _, cmd := range bad {
		if err := e.RegisterTelemetry(cmd, "", fn); !errors.Is(err, ErrTelemetryName) {
			t.Errorf("RegisterTelemetry(%q) = %v, want ErrTelemetryName", cmd, err)
		}
	}
	if err := e.RegisterTelemetry(telemetryName("nilfn"), "", nil); !errors.Is(err, ErrTelemetryName) {
		t.Errorf("nil function: %v, want ErrTelemetryName", err)
	}
	if err := e.RegisterTelemetry(telemetryName("longhelp"), strings.Repeat("h", MaxTelemetryHelpLen+1), fn); !errors.Is(err, ErrTelemetryName) {
		t.Errorf("long help: %v, want ErrTelemetryName", err)
	}
	list, _ := dialTelemetry(t, e).query("/").([]any)
	n := 0
	for _, v := range list {
		s, _ := v.(string)
		if s == dup {
			n++
		}
		if strings.Contains(s, "-") || strings.Contains(s, " ") || s == "/"+strings.Repeat("a", MaxTelemetryCmdLen) {
			t.Errorf("/ lists %q", s)
		}
	}
	if n != 1 {
		t.Errorf("/ lists %s %d times, want once", dup, n)
	}
}

// TestTelemetryLimits registers at DPDK's limits (the longest name and
// help) and checks that the library accepts and answers them, so the
// constants copied from telemetry.c still hold.
func TestTelemetryLimits(t *testing.T) {
	e := needDPDK(t)
	seq := strconv.FormatInt(telemetrySeq.Add(1), 10)
	cmd := "/poolrelay_test/long" + seq
	cmd += strings.Repeat("x", MaxTelemetryCmdLen-len(cmd))
	help := strings.Repeat("h", MaxTelemetryHelpLen)
	err := e.RegisterTelemetry(cmd, help, func(_ string, dst []TelemetryValue) ([]TelemetryValue, error) {
		return append(dst, TelemetryValue{Name: "ok", Value: 1}), nil
	})
	if err != nil {
		t.Fatalf("%d-byte name, %d-byte help: %v", len(cmd), len(help), err)
	}
	cl := dialTelemetry(t, e)
	if got := cl.query(cmd); !reflect.DeepEqual(got, object(t, `{"ok": 1}`)) {
		t.Errorf("%s = %v", cmd, got)
	}
	if got := cl.query("/help," + cmd); !reflect.DeepEqual(got, map[string]any{cmd: help}) {
		t.Errorf("help of %s = %v, want the whole text", cmd, got)
	}
}

// TestTelemetryTruncated returns more values than a reply holds, at the top
// level and in groups, and expects a reply within max_output_len that
// carries what fits and counts the rest.
func TestTelemetryTruncated(t *testing.T) {
	e := needDPDK(t)
	for _, shape := range []struct {
		name          string
		top, groups   int
		perGroup      int
		wantTruncated bool
	}{
		{"top", 1000, 0, 0, true},
		{"groups", 0, 300, 3, true},
		{"biggroup", 10, 1, 400, true},
		{"bytes", 100, 20, 200, true},
		{"fits", 200, 3, 20, false},
	} {
		t.Run(shape.name, func(t *testing.T) {
			cmd := telemetryName("many")
			total := shape.top + shape.groups*shape.perGroup
			err := e.RegisterTelemetry(cmd, "", func(_ string, dst []TelemetryValue) ([]TelemetryValue, error) {
				for i := 0; i < shape.top; i++ {
					dst = append(dst, TelemetryValue{Name: "v" + strconv.Itoa(i), Value: uint64(i)})
				}
				for g := 0; g < shape.groups; g++ {
					for i := 0; i < shape.perGroup; i++ {
						dst = append(dst, TelemetryValue{Group: "g" + strconv.Itoa(g), Name: "v" + strconv.Itoa(i), Value: 1})
					}
				}
				return dst, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			cl := dialTelemetry(t, e)
			raw := cl.raw(cmd)
			if len(raw) >= telemetryMaxOutput {
				t.Fatalf("reply of %d bytes", len(raw))
			}
			reply := cl.query(cmd).(map[string]any)
			got := 0
			var truncated int64
			for k, v := range reply {
				switch v := v.(type) {
				case map[string]any:
					got += len(v)
				case json.Number:
					if k == TelemetryTruncatedKey {
						truncated, _ = v.Int64()
					} else {
						got++
					}
				}
			}
			if got+int(truncated) != total || (truncated > 0) != shape.wantTruncated {
				t.Errorf("%d values in the reply + %d truncated, want %d in all (truncation expected: %v)",
					got, truncated, total, shape.wantTruncated)
			}
			if shape.name == "bytes" && len(raw) < telemetryMaxOutput-256 {
				t.Errorf("reply of %d bytes: the layout wastes the buffer", len(raw))
			}
			t.Logf("%d of %d values in %d bytes", got, total, len(raw))
		})
	}
}

// TestTelemetryFailures makes the function fail and panic: the client gets
// a null reply, the process lives on, and the next request is answered.
func TestTelemetryFailures(t *testing.T) {
	e := needDPDK(t)
	cmd := telemetryName("fail")
	err := e.RegisterTelemetry(cmd, "", func(params string, dst []TelemetryValue) ([]TelemetryValue, error) {
		switch params {
		case "error":
			return dst, errors.New("no such peer")
		case "panic":
			panic("boom")
		}
		return append(dst, TelemetryValue{Name: "ok", Value: 1}), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cl := dialTelemetry(t, e)
	for _, p := range []string{"error", "panic"} {
		if got := cl.raw(cmd + "," + p); string(got) != `{"`+cmd+`":null}` {
			t.Errorf("%s,%s = %s, want null", cmd, p, got)
		}
	}
	if got := cl.query(cmd); !reflect.DeepEqual(got, object(t, `{"ok": 1}`)) {
		t.Errorf("%s after a panic = %v", cmd, got)
	}
	if !strings.Contains(env.logs.String(), "panicked: boom") {
		t.Errorf("the panic was not logged: %s", env.logs.String())
	}
}

// TestTelemetryConcurrent queries from several connections, each on its own
// DPDK thread, while a writer moves the counters the command reads: every
// reply is consistent with a moment of the counter (never going back).
func TestTelemetryConcurrent(t *testing.T) {
	e := needDPDK(t)
	cmd := telemetryName("live")
	var counter atomic.Uint64
	err := e.RegisterTelemetry(cmd, "", func(_ string, dst []TelemetryValue) ([]TelemetryValue, error) {
		return append(dst, TelemetryValue{Group: "live", Name: "n", Value: counter.Load()}), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				counter.Add(1)
			}
		}
	}()
	defer close(stop)
	const conns, requests = 4, 100
	clients := make([]*telemetryClient, conns)
	for i := range clients {
		clients[i] = dialTelemetry(t, e)
	}
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for _, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last uint64
			for range requests {
				out := cl.raw(cmd)
				var reply map[string]map[string]map[string]uint64
				if err := json.Unmarshal(out, &reply); err != nil {
					errs <- fmt.Errorf("%s: %v", out, err)
					return
				}
				n := reply[cmd]["live"]["n"]
				if n < last {
					errs <- fmt.Errorf("counter went back from %d to %d", last, n)
					return
				}
				last = n
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The helper process of TestTelemetryAfterClose, selected by this variable.
const telemetryChildEnv = "POOLRELAY_DPDK_TELEMETRY_CHILD"

// TestTelemetryAfterClose closes an EAL under a connected client, in a
// child process (the EAL of this one serves the other tests), and expects
// the command to answer {} instead of calling its function.
func TestTelemetryAfterClose(t *testing.T) {
	needDPDK(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestTelemetryAfterCloseHelper$", "-test.v")
	cmd.Env = append(os.Environ(), telemetryChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestTelemetryAfterCloseHelper") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// TestTelemetryAfterCloseHelper runs only in the child of
// TestTelemetryAfterClose (the usual helper-process pattern: it returns at
// once otherwise). It closes the EAL TestMain opened; TestMain's own Close
// then finds it closed and checks that nothing was left behind.
func TestTelemetryAfterCloseHelper(t *testing.T) {
	if os.Getenv(telemetryChildEnv) == "" {
		return
	}
	e := needDPDK(t)
	cmd := telemetryName("closed")
	var calls atomic.Int32
	err := e.RegisterTelemetry(cmd, "", func(_ string, dst []TelemetryValue) ([]TelemetryValue, error) {
		calls.Add(1)
		return append(dst, TelemetryValue{Name: "n", Value: 1}), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cl := dialTelemetry(t, e)
	if got := cl.query(cmd); !reflect.DeepEqual(got, object(t, `{"n": 1}`)) {
		t.Fatalf("before Close: %v", got)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if got := cl.raw(cmd); string(got) != `{"`+cmd+`":{}}` {
		t.Errorf("after Close: %s, want an empty object", got)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("function called %d times, want once (before Close)", n)
	}
	if p := e.TelemetrySocket(); p != "" {
		t.Errorf("TelemetrySocket after Close = %q, want none", p)
	}
	if err := e.RegisterTelemetry(telemetryName("late"), "", func(_ string, dst []TelemetryValue) ([]TelemetryValue, error) { return dst, nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("RegisterTelemetry after Close: %v, want ErrClosed", err)
	}
}

// BenchmarkTelemetryRequest measures a client's round trip for a command
// of four ports with four counters each (the allocations counted are the
// whole process's: client, DPDK thread and handler).
func BenchmarkTelemetryRequest(b *testing.B) {
	e := needDPDK(b)
	cmd := telemetryName("bench")
	names := []string{"net_null0", "net_null1", "net_ring0", "eth3"}
	err := e.RegisterTelemetry(cmd, "", func(_ string, dst []TelemetryValue) ([]TelemetryValue, error) {
		for i, p := range names {
			dst = append(dst,
				TelemetryValue{Group: p, Name: "rx_packets", Value: uint64(i)},
				TelemetryValue{Group: p, Name: "rx_bytes", Value: uint64(i)},
				TelemetryValue{Group: p, Name: "tx_packets", Value: uint64(i)},
				TelemetryValue{Group: p, Name: "tx_bytes", Value: uint64(i)})
		}
		return dst, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	cl := dialTelemetry(b, e)
	req := []byte(cmd)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := cl.conn.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := cl.conn.Read(cl.buf); err != nil {
			b.Fatal(err)
		}
	}
}
