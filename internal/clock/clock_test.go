package clock

import (
	"testing"
	"time"
)

func TestFake(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(t0)
	var c Clock = f
	if !c.Now().Equal(t0) {
		t.Fatal(c.Now())
	}
	f.Advance(time.Second)
	if got := c.Now().Sub(t0); got != time.Second {
		t.Fatal(got)
	}
	f.Set(t0)
	if !c.Now().Equal(t0) {
		t.Fatal(c.Now())
	}
	if d := time.Since(System{}.Now()); d < 0 || d > time.Minute {
		t.Fatal(d)
	}
}
