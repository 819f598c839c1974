package socket

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/ctl/api"
	"github.com/poolrelay/poolrelay/internal/logging"
	"github.com/poolrelay/poolrelay/internal/syncbuf"
)

// backend is a test double of the daemon: it answers status with a fixed
// value and lets a test block a command, which is what the server's
// deadlines and Close are tested against. The commands the server tests do
// not exercise answer unavailable.
type backend struct {
	api.Backend // nil: calling an unlisted method panics, failing the test
	block       chan struct{}
	mu          sync.Mutex
	calls       int
}

func (b *backend) Status(ctx context.Context) (api.Status, error) {
	b.mu.Lock()
	b.calls++
	b.mu.Unlock()
	// The caller is known: this test process.
	if c, ok := CredFrom(ctx); !ok || c.UID != uint32(os.Geteuid()) || c.PID != int32(os.Getpid()) {
		return api.Status{}, api.Errorf(api.CodeInternal, "caller credentials %+v %v", c, ok)
	}
	return api.Status{Identity: "ab", Score: 1.3, Class: "balanced", ActivePeers: 3}, nil
}

// Stats blocks until ctx ends or block is closed.
func (b *backend) Stats(ctx context.Context) (api.Stats, error) {
	select {
	case <-ctx.Done():
		return api.Stats{}, api.Errorf(api.CodeUnavailable, "stats: %v", ctx.Err())
	case <-b.block:
		return api.Stats{Drops: []api.DropStats{{Reason: "debt", Packets: 7}}}, nil
	}
}

func (b *backend) RouteDel(ctx context.Context, session string) error {
	return api.Errorf(api.CodeNotFound, "no route %s", session)
}

func startServer(t *testing.T, o Options) (*Server, *backend) {
	t.Helper()
	b := &backend{block: make(chan struct{})}
	if o.Path == "" {
		o.Path = filepath.Join(t.TempDir(), "run", "ctl.sock")
	}
	if o.Backend == nil {
		o.Backend = b
	}
	o.Log = logging.Nop()
	s, err := Listen(o)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, b
}

func roundTrip(t *testing.T, path, raw string) api.Response {
	t.Helper()
	c := &Client{Path: path, Timeout: 5 * time.Second}
	resp, err := c.RoundTrip(context.Background(), []byte(raw))
	if err != nil {
		t.Fatalf("RoundTrip(%.40q): %v", raw, err)
	}
	return resp
}

// alive checks that the server still answers a good request.
func alive(t *testing.T, path string) {
	t.Helper()
	c := &Client{Path: path}
	st, err := c.Status(context.Background())
	if err != nil || st.ActivePeers != 3 {
		t.Fatalf("server no longer answers: %+v %v", st, err)
	}
}

func TestStatusOverSocket(t *testing.T) {
	s, _ := startServer(t, Options{})
	alive(t, s.Path())
}

func TestBadRequestsGetCodesAndServerSurvives(t *testing.T) {
	s, _ := startServer(t, Options{MaxRequest: 4096})
	for _, tc := range []struct {
		name, raw string
		code      api.Code
	}{
		{"malformed", "{not json\n", api.CodeBadRequest},
		{"not an object", "[1,2]\n", api.CodeBadRequest},
		{"two objects", `{"v":1,"cmd":"status"} {"v":1}` + "\n", api.CodeBadRequest},
		{"empty line", "\n", api.CodeBadRequest},
		{"unknown command", `{"v":1,"cmd":"reboot"}` + "\n", api.CodeUnknownCommand},
		{"future version", `{"v":2,"cmd":"status"}` + "\n", api.CodeUnsupportedVersion},
		{"missing version", `{"cmd":"status"}` + "\n", api.CodeUnsupportedVersion},
		{"unknown argument", `{"v":1,"cmd":"status","args":{"verbose":true}}` + "\n", api.CodeInvalidArgument},
		{"wrong argument type", `{"v":1,"cmd":"trace","args":{"port":"p0","count":"ten"}}` + "\n", api.CodeInvalidArgument},
		{"argument out of range", `{"v":1,"cmd":"trace","args":{"port":"p0","count":0}}` + "\n", api.CodeInvalidArgument},
		{"backend error", `{"v":1,"cmd":"route.del","args":{"session":"00"}}` + "\n", api.CodeNotFound},
		{"too large", `{"v":1,"cmd":"status","args":"` + strings.Repeat("x", 8192) + `"}` + "\n", api.CodeTooLarge},
		{"too large without newline", strings.Repeat("y", 100000), api.CodeTooLarge},
		{"no newline, half-closed", `{"v":1,"cmd":"reboot"}`, api.CodeUnknownCommand},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var resp api.Response
			if tc.name == "no newline, half-closed" {
				resp = halfClosed(t, s.Path(), tc.raw)
			} else {
				resp = roundTrip(t, s.Path(), tc.raw)
			}
			if resp.OK || resp.Error == nil || resp.Error.Code != tc.code {
				t.Fatalf("got %+v %+v, want code %s", resp, resp.Error, tc.code)
			}
			if resp.Error.Message == "" {
				t.Error("error without a message")
			}
			alive(t, s.Path())
		})
	}
}

// halfClosed sends raw without a newline and closes its write side.
func halfClosed(t *testing.T, path, raw string) api.Response {
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, raw)
	c.(*net.UnixConn).CloseWrite()
	resp, err := readResponse(c)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// A connection stays usable after a bad request, and carries several in turn.
func TestConnectionCarriesSeveralRequests(t *testing.T) {
	s, b := startServer(t, Options{})
	c, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "garbage\n"+`{"v":1,"cmd":"status"}`+"\n"+`{"v":1,"cmd":"status"}`+"\n")
	dec := json.NewDecoder(c)
	var codes []string
	for range 3 {
		var r api.Response
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		if r.OK {
			codes = append(codes, "ok")
		} else {
			codes = append(codes, string(r.Error.Code))
		}
	}
	if got := strings.Join(codes, ","); got != "bad_request,ok,ok" {
		t.Fatalf("responses %s", got)
	}
	if b.calls != 2 {
		t.Fatalf("status called %d times", b.calls)
	}
}

func TestSocketModeAndDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	s, _ := startServer(t, Options{Path: filepath.Join(dir, "ctl.sock")})
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want socket 0660", fi.Mode())
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o750 {
		t.Errorf("directory mode %v, want 0750", di.Mode().Perm())
	}
}

func TestStaleSocketRemovedLiveOneKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl.sock")
	// A stale socket: bound, then its listener gone without unlinking.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatal("stale socket not left behind:", err)
	}
	s, _ := startServer(t, Options{Path: path})
	alive(t, s.Path())

	// A live one is not taken over.
	_, err = Listen(Options{Path: path, Backend: &backend{}, Log: logging.Nop()})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second Listen: %v, want ErrInUse", err)
	}
	alive(t, s.Path())

	// A regular file is never removed.
	file := filepath.Join(t.TempDir(), "not-a-socket")
	os.WriteFile(file, []byte("keep"), 0o600)
	if _, err := Listen(Options{Path: file, Backend: &backend{}, Log: logging.Nop()}); !errors.Is(err, ErrNotSocket) {
		t.Fatalf("Listen over a file: %v, want ErrNotSocket", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Fatal("regular file was touched")
	}
}

func TestCommandTimeout(t *testing.T) {
	s, _ := startServer(t, Options{CommandTimeout: 50 * time.Millisecond})
	c := &Client{Path: s.Path()}
	_, err := c.Stats(context.Background())
	if !errors.Is(err, api.ErrUnavailable) {
		t.Fatalf("blocked command: %v, want unavailable after the command timeout", err)
	}
	alive(t, s.Path())
}

func TestIdleConnectionClosed(t *testing.T) {
	s, _ := startServer(t, Options{IdleTimeout: 50 * time.Millisecond})
	c, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, `{"v":1,"cmd":"sta`) // and never finish
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: read %d, %v; want EOF (closed, no answer to half a request)", n, err)
	}
	alive(t, s.Path())
}

// Close lets a running command answer, ends idle connections and removes
// the socket file.
func TestGracefulClose(t *testing.T) {
	b := &backend{block: make(chan struct{})}
	path := filepath.Join(t.TempDir(), "ctl.sock")
	s, err := Listen(Options{Path: path, Backend: b, Log: logging.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()

	idle, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	result := make(chan error, 1)
	go func() {
		_, err := (&Client{Path: path}).Stats(context.Background())
		result <- err
	}()
	time.Sleep(50 * time.Millisecond) // let Stats reach the backend
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	// The running command saw its context cancelled and still answered.
	if err := <-result; !errors.Is(err, api.ErrUnavailable) {
		t.Fatalf("in-flight command: %v, want its (cancelled) answer", err)
	}
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection after Close: %v, want EOF", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file after Close: %v", err)
	}
	if _, err := (&Client{Path: path}).Status(context.Background()); !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("client after Close: %v, want ErrNoDaemon", err)
	}
}

func TestPolicy(t *testing.T) {
	groups := map[uint32][]uint32{1001: {100, 990}, 1002: {100}}
	p := Policy{Self: 500, Group: 990, AllowUIDs: []uint32{1500},
		groupsOf: func(uid uint32) ([]uint32, error) {
			if g, ok := groups[uid]; ok {
				return g, nil
			}
			return nil, errors.New("no such user")
		},
		// pid 7 holds group 990 (given by sg) as uid 1002; pid 8 holds it
		// as another uid (a pid reused since the connect).
		procGroupsOf: func(pid int32) (uint32, []uint32, error) {
			switch pid {
			case 7:
				return 1002, []uint32{100, 990}, nil
			case 8:
				return 1004, []uint32{990}, nil
			}
			return 0, nil, errors.New("no such process")
		}}
	for _, tc := range []struct {
		cred Cred
		ok   bool
	}{
		{Cred{PID: 7, UID: 1002, GID: 100}, true},  // holds the group, unknown to the database
		{Cred{PID: 8, UID: 1002, GID: 100}, false}, // the pid's uid is not the connector's
		{Cred{UID: 0, GID: 0}, true},               // root
		{Cred{UID: 500, GID: 500}, true},           // the daemon's own user
		{Cred{UID: 1003, GID: 990}, true},          // primary group is the socket's
		{Cred{UID: 1001, GID: 100}, true},          // supplementary member
		{Cred{UID: 1500, GID: 1500}, true},         // allowed explicitly
		{Cred{UID: 1002, GID: 100}, false},         // known user, not a member
		{Cred{UID: 65534, GID: 65534}, false},
	} {
		err := p.Allow(tc.cred)
		if (err == nil) != tc.ok {
			t.Errorf("Allow(%+v) = %v, want allowed=%v", tc.cred, err, tc.ok)
		}
	}
}

func TestParseStatus(t *testing.T) {
	own, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	euid, _, err := parseStatus(own)
	if err != nil || euid != uint32(os.Geteuid()) {
		t.Fatalf("own status: euid %d, %v; want %d", euid, err, os.Geteuid())
	}
	for _, tc := range []struct {
		in   string
		euid uint32
		gids []uint32
		ok   bool
	}{
		{"Name:\tsh\nUid:\t1000\t1002\t1002\t1002\nGid:\t100\t100\t100\t100\nGroups:\t100 990 \n", 1002, []uint32{100, 990}, true},
		{"Uid:\t0\t0\t0\t0\nGroups:\t\n", 0, nil, true},
		{"Uid:\t0\nGroups:\t1\n", 0, nil, false},
		{"Uid:\t0\t0\t0\t0\n", 0, nil, false},
		{"Uid:\t0\tx\t0\t0\nGroups:\t1\n", 0, nil, false},
		{"Uid:\t0\t0\t0\t0\nGroups:\t1 99999999999\n", 0, nil, false},
		{"", 0, nil, false},
	} {
		euid, gids, err := parseStatus([]byte(tc.in))
		if (err == nil) != tc.ok || (tc.ok && (euid != tc.euid || !slices.Equal(gids, tc.gids))) {
			t.Errorf("parseStatus(%q) = %d %v %v", tc.in, euid, gids, err)
		}
	}
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte("Uid:\t1000\t1002\t1002\t1002\nGroups:\t100 990\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		euid, gids, err := parseStatus(b)
		if err != nil && (euid != 0 || gids != nil) {
			t.Fatalf("error %v with results %d %v", err, euid, gids)
		}
	})
}

// helperEnv makes the test binary act as a CLI client (see TestMain).
const helperEnv = "POOLRELAY_SOCKET_TEST_CLIENT"

// floodEnv makes the test binary hold as many connections to the socket as
// it can for a while, reconnecting each one the server closes (see
// TestFloodNeverLocksRootOut).
const floodEnv = "POOLRELAY_SOCKET_TEST_FLOOD"

func TestMain(m *testing.M) {
	if path := os.Getenv(floodEnv); path != "" {
		flood(path, 300, 3*time.Second)
		os.Exit(0)
	}
	if path := os.Getenv(helperEnv); path != "" {
		_, err := (&Client{Path: path, Timeout: 5 * time.Second}).Status(context.Background())
		var ae *api.Error
		switch {
		case err == nil:
			fmt.Println("ok")
		case errors.As(err, &ae):
			fmt.Println(ae.Code, ae.Message)
		default:
			fmt.Println("error:", err)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runAs runs this test binary as a client with uid/gid 65534 (nobody) and
// returns what it printed.
func runAs(t *testing.T, bin, sock string, groups ...uint32) string {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), helperEnv+"="+sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: groups}}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("client as nobody: %v: %s", err, out.String())
	}
	return strings.TrimSpace(out.String())
}

// clientCopy copies the test binary, as the client, into a fresh directory
// that the unprivileged user can traverse, and returns the directory and
// the copy's path.
func clientCopy(t *testing.T) (top, bin string) {
	t.Helper()
	top = t.TempDir()
	// t.TempDir's parent is 0700: nobody needs to traverse both.
	for _, d := range []string{filepath.Dir(top), top} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(top, "client")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return top, bin
}

// An unprivileged user is refused: by the file's mode, and by SO_PEERCRED
// when the mode was widened.
func TestUnprivilegedUserRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user; TestPolicy covers the decision")
	}
	top, bin := clientCopy(t)
	s, b := startServer(t, Options{Path: filepath.Join(top, "run", "ctl.sock")})

	// The kernel refuses the connection: the client reports the file's
	// permissions.
	if got := runAs(t, bin, s.Path()); !strings.HasPrefix(got, string(api.CodePermissionDenied)+" "+s.Path()) {
		t.Fatalf("nobody through the 0750 directory: %q, want %s from connect", got, api.CodePermissionDenied)
	}
	// Widen the mode by hand, as a careless operator might: the kernel's
	// credentials still refuse the connection.
	os.Chmod(filepath.Dir(s.Path()), 0o755)
	os.Chmod(s.Path(), 0o666)
	// The server refuses it: the message is the policy's.
	if got := runAs(t, bin, s.Path()); !strings.HasPrefix(got, string(api.CodePermissionDenied)+" uid 65534") {
		t.Fatalf("nobody with a world-writable socket: %q, want %s from SO_PEERCRED", got, api.CodePermissionDenied)
	}
	if b.calls != 0 {
		t.Fatalf("a refused client reached the backend %d times", b.calls)
	}
	alive(t, s.Path())
}

// A user given the socket's group by sg or setpriv, unknown to the group
// database, connects through the file's mode with the groups its process
// holds, and the server accepts it for the same reason.
func TestGroupHeldByProcessAllowed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user with other groups; TestPolicy covers the decision")
	}
	const gid = 47113 // in no group database entry
	top, bin := clientCopy(t)
	s, b := startServer(t, Options{Path: filepath.Join(top, "run", "ctl.sock"), Group: strconv.Itoa(gid)})
	os.Chmod(filepath.Dir(s.Path()), 0o755)
	if got := runAs(t, bin, s.Path()); !strings.HasPrefix(got, string(api.CodePermissionDenied)) {
		t.Fatalf("nobody without the group: %q, want %s", got, api.CodePermissionDenied)
	}
	if got := runAs(t, bin, s.Path(), gid); strings.HasPrefix(got, string(api.CodePermissionDenied)) {
		t.Fatalf("nobody holding group %d: %q, want it allowed", gid, got)
	}
	if b.calls != 1 {
		t.Fatalf("backend calls %d, want the allowed client's one", b.calls)
	}
}

// Commands that change the relay are logged with who ran them; reads are
// not logged above debug.
func TestMutatingCommandsLogged(t *testing.T) {
	var buf syncbuf.Buffer
	path := filepath.Join(t.TempDir(), "ctl.sock")
	s, err := Listen(Options{Path: path, Backend: &backend{}, Log: zerolog.New(&buf).Level(zerolog.InfoLevel)})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	c := &Client{Path: path}
	c.Status(context.Background())
	c.RouteDel(context.Background(), "0a")
	s.Close()
	out := buf.String()
	want := fmt.Sprintf(`"level":"warn","code":"not_found","error":"no route 0a","cmd":"route.del","uid":%d,"pid":%d,"ok":false,"message":"control command"`, os.Geteuid(), os.Getpid())
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, want) {
		t.Fatalf("log:\n%s\nwant one line with %s", out, want)
	}
}

// flood keeps n connections to path open for d, idle, reconnecting each
// one the server closes or refuses, and prints how many connects it made
// and how many the server answered with a refusal.
func flood(path string, n int, d time.Duration) {
	var mu sync.Mutex
	connects, refused := 0, 0
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				c, err := net.Dial("unix", path)
				if err != nil {
					time.Sleep(time.Millisecond)
					continue
				}
				mu.Lock()
				connects++
				mu.Unlock()
				c.SetReadDeadline(end)
				b := make([]byte, 512)
				if n, _ := c.Read(b); n > 0 && bytes.Contains(b[:n], []byte(`"unavailable"`)) {
					mu.Lock()
					refused++
					mu.Unlock()
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	fmt.Printf("connects=%d refused=%d\n", connects, refused)
}

// TestFloodNeverLocksRootOut: a user allowed on the socket holds hundreds
// of idle connections and reconnects each as soon as it closes. Root's
// commands are all served meanwhile, the flooder never holds more than its
// per-user share, idle ones are closed after the first-request timeout, and
// the refusals are logged a few times, not once each.
func TestFloodNeverLocksRootOut(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the flooding client as another user")
	}
	top, bin := clientCopy(t)
	var logbuf syncbuf.Buffer
	path := filepath.Join(top, "run", "ctl.sock")
	b := &backend{block: make(chan struct{})}
	s, err := Listen(Options{Path: path, Backend: b, Log: zerolog.New(&logbuf), AllowUIDs: []uint32{65534},
		FirstRequestTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	defer s.Close()
	os.Chmod(filepath.Dir(path), 0o755)
	os.Chmod(path, 0o666)

	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), floodEnv+"="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Let the flood fill its share, then use the socket as root throughout.
	time.Sleep(300 * time.Millisecond)
	var worst time.Duration
	served, maxOthers := 0, 0
	c := &Client{Path: path, Timeout: 2 * time.Second}
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		t0 := time.Now()
		st, err := c.Status(context.Background())
		if err != nil || st.Identity != "ab" {
			t.Fatalf("root refused during the flood after %d commands: %v", served, err)
		}
		worst = max(worst, time.Since(t0))
		served++
		s.mu.Lock()
		maxOthers = max(maxOthers, s.perUID[65534])
		s.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("flooder: %v: %s", err, out.String())
	}
	var connects, refused int
	fmt.Sscanf(strings.TrimSpace(out.String()), "connects=%d refused=%d", &connects, &refused)
	t.Logf("root: %d status commands, slowest %v; flooder: %d connects, %d refused busy; %d log lines",
		served, worst, connects, refused, strings.Count(logbuf.String(), "\n"))
	if maxOthers > DefaultMaxPerUID || maxOthers == 0 {
		t.Errorf("the flooder held %d connections at once, want 1..%d", maxOthers, DefaultMaxPerUID)
	}
	if refused < 300 {
		t.Errorf("only %d of the flooder's %d connects were refused busy", refused, connects)
	}
	if lines := strings.Count(logbuf.String(), "control connection refused"); lines == 0 || lines > 3 {
		t.Errorf("%d refusal log lines for %d refusals, want 1-3:\n%s", lines, refused, logbuf.String())
	}
}
