package metrics

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/poolrelay/poolrelay/ctl/api"
	"github.com/poolrelay/poolrelay/internal/logging"
)

// manyRoutes is n routes, route i at i kbit/s: the busiest are the last.
func manyRoutes(n int) []api.Route {
	rs := make([]api.Route, n)
	for i := range rs {
		rs[i] = api.Route{Session: fmt.Sprintf("%032x", i), From: peerA, To: peerA,
			Packets: uint64(10 * i), Bytes: uint64(1000 * i), BPS: float64(1000 * i), PPS: float64(i),
			Forward: api.RouteTraffic{Packets: uint64(10 * i), Bytes: uint64(1000 * i), BPS: float64(1000 * i), PPS: float64(i)}}
	}
	return rs
}

// TestRouteCardinality: however many routes, only the top N by rate get
// series of their own, N as configured; the totals cover them all.
func TestRouteCardinality(t *testing.T) {
	const routes = 500
	for _, top := range []int{0, 1, 7, 1000} {
		src := Source{Routes: func(context.Context) ([]api.Route, error) { return manyRoutes(routes), nil }}
		e, err := New(src, Options{Log: logging.Nop(), TopRoutes: top})
		if err != nil {
			t.Fatal(err)
		}
		_, body := scrape(t, e.Handler())
		sessions := map[string]bool{}
		series := 0
		for _, line := range strings.Split(body, "\n") {
			if !strings.HasPrefix(line, "pool_relay_route_") || strings.HasPrefix(line, "pool_relay_route_top_limit") {
				continue
			}
			series++
			i := strings.Index(line, `session="`)
			if i < 0 {
				t.Fatalf("route series without a session: %s", line)
			}
			sessions[line[i+9:i+9+32]] = true
		}
		want := min(top, routes)
		if len(sessions) != want || series != 8*want {
			t.Errorf("top %d: %d routes in %d series, want %d in %d", top, len(sessions), series, want, 8*want)
		}
		for i := routes - want; i < routes; i++ {
			if !sessions[fmt.Sprintf("%032x", i)] {
				t.Errorf("top %d: route %d, among the busiest, has no series", top, i)
			}
		}
		var bytes uint64
		for i := range routes {
			bytes += uint64(1000 * i)
		}
		wantSeries(t, body, fmt.Sprintf("pool_relay_routes %d", routes), fmt.Sprintf("pool_relay_routes_bytes_total %g", float64(bytes)),
			fmt.Sprintf("pool_relay_route_top_limit %d", top))
	}
	if _, err := New(Source{}, Options{TopRoutes: -1}); err == nil {
		t.Error("a negative TopRoutes accepted")
	}
}

// TestBusiestStable: equal rates are ordered by session id, so that the set
// does not flap between scrapes.
func TestBusiestStable(t *testing.T) {
	rs := []api.Route{{Session: "b", BPS: 5}, {Session: "a", BPS: 5}, {Session: "c", BPS: 9}, {Session: "d"}}
	got := Busiest(rs, 3)
	if len(got) != 3 || got[0].Session != "c" || got[1].Session != "a" || got[2].Session != "b" {
		t.Errorf("busiest %+v", got)
	}
	if rs[0].Session != "b" {
		t.Error("Busiest reordered its argument")
	}
}

// TestPeerTelemetrySeries: the telemetry of a peer, local and claimed, in
// the units the series names say.
func TestPeerTelemetrySeries(t *testing.T) {
	src := Source{Peers: func(context.Context) ([]api.Peer, error) {
		return []api.Peer{{ID: peerA, Connected: true, Class: "balanced", Telemetry: &api.PeerTelemetry{Heartbeats: 12,
			Local:   api.LinkTelemetry{RTT: api.Duration(1500 * time.Microsecond), MTU: 1500, Uptime: api.Duration(time.Minute), ThroughputBPS: 1e6},
			Claimed: api.LinkTelemetry{RTT: api.Duration(2 * time.Millisecond), Jitter: api.Duration(250 * time.Microsecond), LossPPM: 2500, MTU: 1492, ThroughputBPS: 9e5}}}}, nil
	}}
	e, err := New(src, Options{Log: logging.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	_, body := scrape(t, e.Handler())
	p := `peer="` + peerA + `"`
	wantSeries(t, body,
		`pool_relay_peer_rtt_seconds{`+p+`,source="local"} 0.0015`,
		`pool_relay_peer_rtt_seconds{`+p+`,source="claimed"} 0.002`,
		`pool_relay_peer_jitter_seconds{`+p+`,source="claimed"} 0.00025`,
		`pool_relay_peer_loss_ratio{`+p+`,source="claimed"} 0.0025`,
		`pool_relay_peer_mtu_bytes{`+p+`,source="claimed"} 1492`,
		`pool_relay_peer_throughput_bits_per_second{`+p+`,source="local"} 1e+06`,
		`pool_relay_peer_uptime_seconds{`+p+`,source="local"} 60`,
		`pool_relay_peer_heartbeat_sequence{`+p+`} 12`)
}

// TestHelpOnEverySeries: every family the exporter serves, routes and
// telemetry included, has help text.
func TestHelpOnEverySeries(t *testing.T) {
	src := source()
	src.Routes = func(context.Context) ([]api.Route, error) { return manyRoutes(3), nil }
	inner := src.Peers
	src.Peers = func(ctx context.Context) ([]api.Peer, error) {
		ps, err := inner(ctx)
		for i := range ps {
			ps[i].Telemetry = &api.PeerTelemetry{}
		}
		return ps, err
	}
	e, err := New(src, Options{Log: logging.Nop(), TopRoutes: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, body := scrape(t, e.Handler())
	help := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[0] == "#" && f[1] == "HELP" {
			help[f[2]] = true
		}
	}
	families := 0
	for _, line := range strings.Split(body, "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[0] == "#" && f[1] == "TYPE" {
			families++
			if !help[f[2]] {
				t.Errorf("%s has no help text", f[2])
			}
		}
	}
	for _, name := range []string{"pool_relay_route_rate_bits_per_second", "pool_relay_peer_loss_ratio", "pool_relay_routes_packets_total"} {
		if !help[name] {
			t.Errorf("%s not served", name)
		}
	}
	if families < 40 {
		t.Errorf("only %d families served", families)
	}
}
