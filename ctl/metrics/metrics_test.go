package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/poolrelay/poolrelay/ctl/api"
	"github.com/poolrelay/poolrelay/internal/logging"
)

const peerA = "aa00000000000000000000000000000000000000000000000000000000000001"

// snapshots stand in for the daemon's snapshot functions: the exporter's
// job is the translation to series, which is what these tests check.
// peerLab is a static lab peer's id (control.StaticPeerID's form).
const peerLab = "2222222222222222222222222222222222222222222222222222222222222222"

func source() Source {
	return Source{
		Stats: func(context.Context) (api.Stats, error) {
			return api.Stats{
				Ports:  []api.PortStats{{Name: "p0", RxPackets: 10, RxBytes: 1500, TxPackets: 9, TxBytes: 1400, Missed: 1}},
				Queues: []api.QueueStats{{Port: "p0", Queue: 0, Class: "priority", SentPackets: 5, SentBytes: 700, Dropped: 2, Depth: 3, Share: 0.625}},
				Drops:  []api.DropStats{{Reason: "debt", Packets: 4}, {Reason: "bad MAC", Packets: 0}},
				Events: map[string]uint64{"checksum_completed": 8},
			}, nil
		},
		Peers: func(context.Context) ([]api.Peer, error) {
			return []api.Peer{{
				ID: peerA, Connected: true, Class: "balanced", Score: 1.3, Balance: -42, Surplus: 7, Limit: 1000,
				RelayedForBytes: 3000, RelayedForPackets: 3, RelayedByBytes: 3900, RelayedByPackets: 4,
				ChequesIn: 500, ChequesOut: 600,
			}, {ID: peerLab, Connected: true, Class: "heavy_consumer", Static: "pktgen0", Auth: "none", RelayedForPackets: 9}}, nil
		},
		Score: func(context.Context) (api.Score, error) {
			return api.Score{Own: 2.5, Class: "major_contributor", Relayed: 142_000_000, Consumed: 56_800_000,
				Attested: api.Attested{Score: 2.4, Relayed: 140_000_000, Consumed: 58_000_000, ReportingPeers: 3}}, nil
		},
		Control: func(context.Context) (Control, error) {
			return Control{HandshakesOK: 3, HandshakesFailed: 1, HeartbeatsSent: 20, HeartbeatsReceived: 19,
				HeartbeatMismatches: 2, ChequesIssued: 5, ChequesReceived: 6, ChequesRejected: 1, JournalRecords: 77,
				JournalDegraded: true, JournalNotWritten: 14, ChequesDeferred: 3}, nil
		},
	}
}

func scrape(t *testing.T, h http.Handler) (int, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func wantSeries(t *testing.T, body string, series ...string) {
	t.Helper()
	lines := map[string]bool{}
	for _, l := range strings.Split(body, "\n") {
		lines[l] = true
	}
	for _, s := range series {
		if !lines[s] {
			t.Errorf("missing series line %q", s)
		}
	}
}

func TestScrape(t *testing.T) {
	e, err := New(source(), Options{Log: logging.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	code, body := scrape(t, e.Handler())
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	wantSeries(t, body,
		`pool_relay_port_rx_packets_total{port="p0"} 10`,
		`pool_relay_port_tx_bytes_total{port="p0"} 1400`,
		`pool_relay_port_missed_total{port="p0"} 1`,
		`pool_relay_drops_total{reason="debt"} 4`,
		`pool_relay_drops_total{reason="bad MAC"} 0`,
		`pool_relay_queue_dropped_total{class="priority",port="p0",queue="0"} 2`,
		`pool_relay_queue_depth{class="priority",port="p0",queue="0"} 3`,
		`pool_relay_sched_share{class="priority",port="p0",queue="0"} 0.625`,
		`pool_relay_peer_relayed_for_bytes_total{peer="`+peerA+`"} 3000`,
		`pool_relay_peer_relayed_by_bytes_total{peer="`+peerA+`"} 3900`,
		`pool_relay_peer_balance_units{peer="`+peerA+`"} -42`,
		`pool_relay_peer_score{peer="`+peerA+`"} 1.3`,
		`pool_relay_peer_class{class="balanced",peer="`+peerA+`"} 1`,
		`pool_relay_peer_class{class="heavy_consumer",peer="`+peerA+`"} 0`,
		`pool_relay_peer_choked{peer="`+peerA+`"} 0`,
		`pool_relay_peer_cheques_received_units_total{peer="`+peerA+`"} 500`,
		`pool_relay_peer_cheques_issued_units_total{peer="`+peerA+`"} 600`,
		`pool_relay_active_peers 2`,
		`pool_relay_peer_static{auth="none",name="pktgen0",peer="`+peerLab+`"} 1`,
		`pool_relay_score 2.5`,
		`pool_relay_class{class="major_contributor"} 1`,
		`pool_relay_relayed_bytes 1.42e+08`,
		`pool_relay_consumed_bytes 5.68e+07`,
		`pool_relay_dataplane_events_total{event="checksum_completed"} 8`,
		`pool_relay_attested_score 2.4`,
		`pool_relay_attested_bytes{direction="relayed"} 1.4e+08`,
		`pool_relay_score_reporting_peers 3`,
		`pool_relay_handshakes_total{result="failed"} 1`,
		`pool_relay_heartbeats_total{direction="received"} 19`,
		`pool_relay_heartbeat_mismatches_total 2`,
		`pool_relay_cheques_total{outcome="rejected"} 1`,
		`pool_relay_journal_records 77`,
		`pool_relay_journal_degraded 1`,
		`pool_relay_journal_records_not_written_total 14`,
		`pool_relay_cheques_total{outcome="deferred_journal"} 3`,
		`pool_relay_scrape_source_errors{source="stats"} 0`,
	)
	if strings.Contains(body, "go_goroutines") {
		t.Error("runtime series present without Options.Runtime: registry not private?")
	}
}

// A failing source leaves out its own series, and only those.
func TestFailingSource(t *testing.T) {
	src := source()
	src.Peers = func(context.Context) ([]api.Peer, error) { return nil, errors.New("ledger busy") }
	e, err := New(src, Options{Log: logging.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	_, body := scrape(t, e.Handler())
	wantSeries(t, body,
		`pool_relay_scrape_source_errors{source="peers"} 1`,
		`pool_relay_score 2.5`,
		`pool_relay_drops_total{reason="debt"} 4`,
	)
	if strings.Contains(body, "pool_relay_peer_") {
		t.Error("peer series served from a failed source")
	}
}

func TestStartServesMetrics(t *testing.T) {
	e, err := New(source(), Options{Log: logging.Nop(), Runtime: true})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := e.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "pool_relay_journal_records 77") || !strings.Contains(string(b), "go_goroutines") {
		t.Fatalf("scrape: %s", b)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + addr.String() + "/metrics"); err == nil {
		t.Fatal("still serving after Close")
	}
}
