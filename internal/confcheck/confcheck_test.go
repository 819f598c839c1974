package confcheck

import (
	"errors"
	"testing"
)

func TestKeysAndJoin(t *testing.T) {
	e := New("")
	if e.Err() != nil {
		t.Fatal("empty collector reports an error")
	}
	e.Sub("dataplane").Addf("burst", "too big")
	e.Index("port", 1).Addf("mtu", "too small")
	e.Sub("dataplane").Index("udp_ports", 0).Addf("", "out of range")
	want := []string{"dataplane.burst", "port[1].mtu", "dataplane.udp_ports[0]"}
	for i, fe := range e.List() {
		if fe.Key != want[i] {
			t.Errorf("key %d = %q, want %q", i, fe.Key, want[i])
		}
	}
	var fe *FieldError
	if !errors.As(e.Err(), &fe) || fe.Key != "dataplane.burst" {
		t.Fatalf("errors.As found %v", fe)
	}
}
