package dataplane

import (
	"reflect"
	"testing"

	"github.com/poolrelay/poolrelay/internal/confcheck"
)

func TestParseCoreList(t *testing.T) {
	cases := []struct {
		in        string
		want      []int
		shouldErr bool
	}{
		{in: "0-1", want: []int{0, 1}},
		{in: "0,2,4-5", want: []int{0, 2, 4, 5}},
		{in: " 3 , 1 ", want: []int{3, 1}},
		{in: "", shouldErr: true},
		{in: "1-0", shouldErr: true},
		{in: "0,0", shouldErr: true},
		{in: "0-1,1", shouldErr: true},
		{in: "a", shouldErr: true},
		{in: "1024", shouldErr: true},
		{in: "-1", shouldErr: true},
	}
	for _, tc := range cases {
		got, err := ParseCoreList(tc.in)
		if (err != nil) != tc.shouldErr {
			t.Errorf("%q: err %v, shouldErr %v", tc.in, err, tc.shouldErr)
			continue
		}
		if !tc.shouldErr && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseMAC(t *testing.T) {
	mac, err := ParseMAC("02:00:0a:ff:00:01")
	if err != nil || mac != [6]byte{2, 0, 0xa, 0xff, 0, 1} {
		t.Fatalf("got %v, %v", mac, err)
	}
	for _, bad := range []string{"", "02:00:00:00:00", "02:00:00:00:00:0g", "2:0:0:0:0:1", "02-00-00-00-00-01"} {
		if _, err := ParseMAC(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestValidateDefaults(t *testing.T) {
	errs := confcheck.New("")
	DefaultEALConfig().Validate(errs.Sub("eal"))
	p := DefaultPortConfig()
	p.Name, p.Device = "p0", "net_null0"
	p.Validate(errs.Index("port", 0))
	DefaultConfig().Validate(errs.Sub("dataplane"), []string{"p0"})
	if err := errs.Err(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

func TestValidateRejects(t *testing.T) {
	c := DefaultConfig()
	c.Burst, c.PuntRing, c.MbufCache = 0, 100, 600
	c.UDPPorts = []int{0, 70000}
	c.Neighbors = []Neighbor{{IP: "x", MAC: "y", Port: "nope"}}
	errs := confcheck.New("dataplane")
	c.Validate(errs, []string{"p0"})
	want := map[string]bool{
		"dataplane.burst": true, "dataplane.punt_ring": true, "dataplane.mbuf_cache": true,
		"dataplane.udp_ports[0]": true, "dataplane.udp_ports[1]": true,
		"dataplane.neighbor[0].ip": true, "dataplane.neighbor[0].mac": true, "dataplane.neighbor[0].port": true,
	}
	for _, fe := range errs.List() {
		if !want[fe.Key] {
			t.Errorf("unexpected error %v", fe)
		}
		delete(want, fe.Key)
	}
	for k := range want {
		t.Errorf("no error for %s", k)
	}
}
