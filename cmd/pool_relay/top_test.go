package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/poolrelay/poolrelay/ctl/socket"
	"github.com/poolrelay/poolrelay/internal/logging"
)

// mainEnv makes the test binary run pool_relay's main with its arguments
// (see TestMain): how TestTopInPty runs top as its own process on a
// pseudo-terminal.
const mainEnv = "POOL_RELAY_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		os.Exit(run(os.Args[1:], &env{stdout: os.Stdout, stderr: os.Stderr}))
	}
	os.Exit(m.Run())
}

// TestTopSnapshot: with stdout not a terminal, top prints one snapshot of
// the fake daemon's answers and exits; --json gives the same snapshot as
// JSON.
func TestTopSnapshot(t *testing.T) {
	topNow = func() time.Time { return t0 }
	defer func() { topNow = time.Now }()
	d, sock := startDaemon(t)
	code, out, errOut := runCLI(t, "top", "--socket", sock, "--routes", "2")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	golden(t, "top", out)
	if strings.Contains(out, "\x1b") {
		t.Error("snapshot to a non-terminal carries terminal control sequences")
	}
	d.mu.Lock()
	calls := strings.Join(d.calls, " ")
	d.mu.Unlock()
	if calls != "status stats routes peers" {
		t.Errorf("top asked %q, want only the four read-only commands", calls)
	}
	code, out, errOut = runCLI(t, "top", "--socket", sock, "--json")
	var s topSnapshot
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil || len(s.Routes) != 3 || len(s.Peers) != 3 || len(s.Status.Ports) != 2 || !s.At.Equal(t0) {
		t.Errorf("--json: exit %d, stderr %q, snapshot %+v", code, errOut, s)
	}
	for _, bad := range [][]string{{"--interval", "10ms"}, {"--routes", "-1"}, {"extra"}} {
		if code, _, _ := runCLI(t, append([]string{"top", "--socket", sock}, bad...)...); code != exitUsage {
			t.Errorf("top %v: exit %d, want %d", bad, code, exitUsage)
		}
	}
}

// TestTopInPty runs top as its own process on a pseudo-terminal, as an
// operator who is not root but a member of the control socket's group
// (when the test runs as root; otherwise as the current user): it must
// draw in the alternate screen, refresh, and quit on q, restoring the
// screen.
func TestTopInPty(t *testing.T) {
	_, sock, cred := startGroupDaemon(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := self
	if cred != nil {
		// The test binary where the other user can run it.
		bin = filepath.Join(filepath.Dir(filepath.Dir(sock)), "pool_relay.test")
		data, err := os.ReadFile(self)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "top", "--socket", sock, "--interval", "200ms", "--routes", "2")
	cmd.Env = append(os.Environ(), mainEnv+"=1", "TERM=xterm")
	attrs := &syscall.SysProcAttr{Setsid: true, Setctty: true, Credential: cred}
	ptmx, err := pty.StartWithAttrs(cmd, &pty.Winsize{Rows: 50, Cols: 160}, attrs)
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	var mu sync.Mutex
	var screen bytes.Buffer
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := ptmx.Read(b)
			mu.Lock()
			screen.Write(b[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	seen := func() string {
		mu.Lock()
		defer mu.Unlock()
		return screen.String()
	}
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(seen(), "Busiest routes") < 2 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("top drew no two frames in time; the terminal shows:\n%q", seen())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := ptmx.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("top exited with %v; the terminal shows:\n%q", err, seen())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("top did not quit on q; the terminal shows:\n%q", seen())
	}
	time.Sleep(100 * time.Millisecond) // the last bytes through the pty
	out := seen()
	for _, want := range []string{enterScreen, homeClear, "Ports", "Class shares", "Busiest routes (2 of 3, by rate)",
		"0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f", "Peers (3)", "8139770e", "1.23ms", "48.0 Mbit/s / 47.5 Mbit/s", "q quits\r\n", leaveScreen} {
		if !strings.Contains(out, want) {
			t.Errorf("the terminal never showed %q", want)
		}
	}
	if i, j := strings.LastIndex(out, leaveScreen), strings.LastIndex(out, homeClear); i < j {
		t.Error("top drew after leaving the alternate screen")
	}
	if strings.Contains(out, "permission denied") || strings.Contains(out, "retrying") {
		t.Errorf("top could not read the relay:\n%q", out)
	}
}

// startGroupDaemon serves the fake daemon on a socket whose group is
// topGID. Running as root, it returns the credentials of an operator who
// is not root (nobody) but in that group; otherwise nil (the test then runs
// top as the current user, which owns the socket) and says why.
func startGroupDaemon(t *testing.T) (*fakeDaemon, string, *syscall.Credential) {
	t.Helper()
	const topGID = 4717
	if os.Geteuid() != 0 {
		t.Log("not root: top runs as the current user, not as a group member; CI runs as root and covers the group")
		d, sock := startDaemon(t)
		return d, sock, nil
	}
	top := t.TempDir()
	// t.TempDir's parent is 0700: the other user must traverse both.
	if err := errors.Join(os.Chmod(filepath.Dir(top), 0o755), os.Chmod(top, 0o755)); err != nil {
		t.Fatal(err)
	}
	// The socket's directory as deploy/ makes it: the relay's, open to
	// the group.
	run := filepath.Join(top, "run")
	if err := errors.Join(os.Mkdir(run, 0o750), os.Chown(run, 0, topGID)); err != nil {
		t.Fatal(err)
	}
	d := &fakeDaemon{t: t, config: "[log]\nlevel = \"info\"\n"}
	path := filepath.Join(run, "ctl.sock")
	s, err := socket.Listen(socket.Options{Path: path, Group: "4717", Backend: d, Log: logging.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	// nobody, with the socket's group as its group (as after newgrp or
	// sg): SO_PEERCRED shows the kernel's primary group.
	return d, path, &syscall.Credential{Uid: 65534, Gid: topGID, Groups: []uint32{topGID}}
}
