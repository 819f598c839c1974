package daemon

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/poolrelay/poolrelay/crypto/address"
	"github.com/poolrelay/poolrelay/ctl/api"
)

// enroll takes what its help says: IP or IP:PORT, port 9254 by default,
// optionally behind the POOL address the peer must prove.
func TestParseEnrollAddress(t *testing.T) {
	pa := address.New(address.TypeRelay, 0, 0, [32]byte{7})
	for _, tc := range []struct {
		in     string
		want   string
		server bool
	}{
		{"192.0.2.7", "192.0.2.7:9254", false},
		{"192.0.2.7:9300", "192.0.2.7:9300", false},
		{"2001:db8::7", "[2001:db8::7]:9254", false},
		{"[2001:db8::7]", "[2001:db8::7]:9254", false},
		{"[2001:db8::7]:9300", "[2001:db8::7]:9300", false},
		{pa.String() + "@192.0.2.7", "192.0.2.7:9254", true},
		{pa.String() + "@192.0.2.7:9254", "192.0.2.7:9254", true},
	} {
		server, ap, err := parseEnrollAddress(tc.in)
		if err != nil || ap != netip.MustParseAddrPort(tc.want) || (server == pa) != tc.server {
			t.Errorf("%q: %v %v %v; want %s, server given %v", tc.in, server, ap, err, tc.want, tc.server)
		}
	}
	for _, bad := range []string{"", "relay.example.org:9254", "192.0.2.7:0", "192.0.2.7:x", "[192.0.2.7]", "[2001:db8::7", "pool1-relay-bogus@192.0.2.7", "fe80::1%eth0"} {
		_, _, err := parseEnrollAddress(bad)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != api.CodeInvalidArgument || !strings.HasPrefix(ae.Message, "enroll: ") {
			t.Errorf("%q: err %v, want an invalid_argument enroll error", bad, err)
		}
	}
}
