package daemon

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/poolrelay/poolrelay/control"
	"github.com/poolrelay/poolrelay/crypto/identity"
	"github.com/poolrelay/poolrelay/ctl/api"
	"github.com/poolrelay/poolrelay/pool/transport"
)

// Peers are named by their whole id, any prefix of it, or their address; a
// prefix shared by several is refused with every candidate listed.
func TestResolvePeer(t *testing.T) {
	mk := func(b0, b1 byte, addr string) control.PeerInfo {
		var k identity.PublicKey
		k[0], k[1], k[31] = b0, b1, 7
		return control.PeerInfo{Key: k, Endpoint: transport.Endpoint{Addr: netip.MustParseAddrPort(addr)}}
	}
	infos := []control.PeerInfo{mk(0xc8, 0xbe, "192.0.2.7:9254"), mk(0xc8, 0xf0, "192.0.2.8:9254"), mk(0x40, 0x3c, "[2001:db8::9]:9254")}
	for _, tc := range []struct {
		name string
		want int    // index in infos, -1 for an error
		code string // the error's code
	}{
		{infos[0].Key.String(), 0, ""},
		{"c8be", 0, ""},
		{"C8BE", 0, ""},
		{"c8f0", 1, ""},
		{"4", 2, ""},
		{"192.0.2.8", 1, ""},
		{"192.0.2.7:9254", 0, ""},
		{"[2001:db8::9]:9254", 2, ""},
		{"c8", -1, "invalid_argument"},
		{"c8bf", -1, "not_found"},
		{"zz", -1, "not_found"},
		{"", -1, "not_found"},
	} {
		pi, err := resolvePeer(infos, tc.name)
		if tc.want >= 0 {
			if err != nil || pi.Key != infos[tc.want].Key {
				t.Errorf("%q: %v, %v; want peer %d", tc.name, pi.Key, err, tc.want)
			}
			continue
		}
		var ae *api.Error
		if !errors.As(err, &ae) || string(ae.Code) != tc.code {
			t.Errorf("%q: %v, want code %s", tc.name, err, tc.code)
			continue
		}
		if tc.code == "invalid_argument" && (!strings.Contains(err.Error(), infos[0].Key.String()) || !strings.Contains(err.Error(), infos[1].Key.String())) {
			t.Errorf("%q: %v does not list both candidates", tc.name, err)
		}
	}
}
