package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain turns the test binary into a crash-test child when asked to, so
// the short crash test below needs no separate build.
func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		if err := child(dir); err != nil {
			os.Stderr.WriteString("crashtest child: " + err.Error() + "\n")
			os.Exit(2)
		}
		return
	}
	os.Exit(m.Run())
}

// TestCrashShort is the crash test with 20 kills, for CI.
func TestCrashShort(t *testing.T) {
	var out strings.Builder
	res, err := run(options{kills: 20, dir: t.TempDir(), seed: uint64(time.Now().UnixNano()),
		minLife: 5 * time.Millisecond, maxLife: 200 * time.Millisecond, exe: os.Args[0], out: &out})
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || res.Kills != 20 || res.Line() != "kills=20 lost=0 chain_ok=true" {
		t.Fatalf("%+v: %s", res, res.Line())
	}
	if res.Acked == 0 {
		t.Fatal("the children acknowledged nothing: the test tested nothing")
	}
	t.Logf("%d acknowledgements, %d torn tails repaired", res.Acked, res.Torn)
}
