// Package metrics is the relay's Prometheus exporter. It keeps no state of
// its own: on each scrape it calls the daemon's snapshot functions (the same
// ones that answer the control socket) and turns what they return into
// series, so a scrape costs nothing between scrapes and can never disagree
// with pool_relay status.
//
// It uses its own registry, never the global one, so that nothing another
// package registers leaks into the relay's endpoint, and tests can build as
// many exporters as they like.
//
// The address is loopback by default ([ctl] metrics_listen): the series name
// every peer and its balance.
package metrics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/ctl/api"
)

// Control are the control core's own counters, cumulative since start.
type Control struct {
	// HandshakesOK and HandshakesFailed count enrollment handshakes
	// completed and refused (bad cookie, puzzle, signature or terms).
	HandshakesOK, HandshakesFailed uint64
	// HeartbeatsSent and HeartbeatsReceived count signed heartbeats;
	// HeartbeatMismatches counts received ones whose counters disagreed
	// with ours beyond the tolerated band.
	HeartbeatsSent, HeartbeatsReceived, HeartbeatMismatches uint64
	// ChequesIssued, ChequesReceived and ChequesRejected count cheques.
	ChequesIssued, ChequesReceived, ChequesRejected uint64
	// JournalRecords is the change journal's length.
	JournalRecords uint64
	// JournalDegraded is true while the journal cannot write (a full
	// disk); JournalNotWritten counts the records it could not write
	// since start (taken back or refused, each episode ending with a gap
	// record), and ChequesDeferred the received cheques not taken for it.
	JournalDegraded   bool
	JournalNotWritten uint64
	ChequesDeferred   uint64
}

// Source is where the exporter reads. Each field is a snapshot function;
// nil ones are skipped. The Backend's methods fit the first three directly
// (Source{Stats: b.Stats, Peers: b.Peers, Score: b.Score, ...}).
type Source struct {
	Stats   func(context.Context) (api.Stats, error)
	Peers   func(context.Context) ([]api.Peer, error)
	Score   func(context.Context) (api.Score, error)
	Control func(context.Context) (Control, error)
	// Routes are the routes with their traffic; the exporter labels only
	// the Options.TopRoutes busiest of them.
	Routes func(context.Context) ([]api.Route, error)
}

// Options configure New.
type Options struct {
	// Log receives serving errors; logging.Nop() when there is none.
	Log zerolog.Logger
	// Timeout bounds one scrape's reads of the sources; 0 means 5 s.
	Timeout time.Duration
	// Runtime adds the Go runtime and process collectors.
	Runtime bool
	// TopRoutes is how many routes get series of their own: the busiest
	// by rate (bits per second, then frames per second, then bytes), so
	// that the series' cardinality stays bounded however many routes the
	// relay carries ([ctl] metrics_top_routes). 0 exports only the route
	// totals.
	TopRoutes int
}

// Exporter serves the relay's metrics.
type Exporter struct {
	reg *prometheus.Registry
	log zerolog.Logger
	srv *http.Server
}

// New builds an exporter over src with its own registry.
func New(src Source, o Options) (*Exporter, error) {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	reg := prometheus.NewRegistry()
	if o.TopRoutes < 0 {
		return nil, fmt.Errorf("metrics: TopRoutes %d is negative", o.TopRoutes)
	}
	if err := reg.Register(&collector{src: src, timeout: o.Timeout, top: o.TopRoutes}); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if o.Runtime {
		if err := reg.Register(collectors.NewGoCollector()); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return &Exporter{reg: reg, log: o.Log}, nil
}

// Registry is the exporter's registry.
func (e *Exporter) Registry() *prometheus.Registry { return e.reg }

// Handler serves the metrics in the Prometheus text (or negotiated) format.
// A failing source is reported and its series left out; the others are
// still served.
func (e *Exporter) Handler() http.Handler {
	return promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      zerologAdapter{e.log},
		// A scrape is a few hundred series; two at once is already a
		// misconfigured scraper.
		MaxRequestsInFlight: 2,
		Timeout:             30 * time.Second,
	})
}

type zerologAdapter struct{ log zerolog.Logger }

func (z zerologAdapter) Println(v ...any) { z.log.Warn().Msg(fmt.Sprint(v...)) }

// Start listens on addr (host:port) and serves /metrics until Close. It
// returns the bound address (useful with port 0).
func (e *Exporter) Start(addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", e.Handler())
	e.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	go func() {
		if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error().Err(err).Msg("metrics server stopped")
		}
	}()
	return ln.Addr(), nil
}

// Close stops the server, letting a running scrape finish for up to 5 s.
func (e *Exporter) Close() error {
	if e.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// Series descriptions. Peer series are labelled by the full peer id: the
// number of peers bounds their cardinality.
var (
	portRxPackets = desc("port_rx_packets_total", "Frames received on a port as the device counts them.", "port")
	portRxBytes   = desc("port_rx_bytes_total", "Bytes received on a port.", "port")
	portTxPackets = desc("port_tx_packets_total", "Frames transmitted on a port as the device counts them, the control core's own included.", "port")
	portTxBytes   = desc("port_tx_bytes_total", "Bytes transmitted on a port.", "port")
	events        = desc("dataplane_events_total", "What the workers counted that is neither traffic nor a drop (checksum_completed: a relayed frame's UDP checksum its sender left to offload, completed).", "event")
	portMissed    = desc("port_missed_total", "Frames the NIC dropped for lack of RX descriptors.", "port")
	drops         = desc("drops_total", "Frames dropped, by reason.", "reason")

	queueSentPackets = desc("queue_sent_packets_total", "Frames sent from an egress class queue.", "port", "queue", "class")
	queueSentBytes   = desc("queue_sent_bytes_total", "Bytes sent from an egress class queue.", "port", "queue", "class")
	queueDropped     = desc("queue_dropped_total", "Frames refused at a full egress class queue.", "port", "queue", "class")
	queueDepth       = desc("queue_depth", "Frames waiting in an egress class queue.", "port", "queue", "class")
	schedShare       = desc("sched_share", "Fraction of a scheduler's bytes a class sent over the last sampling interval.", "port", "queue", "class")

	peerForBytes    = desc("peer_relayed_for_bytes_total", "Bytes this relay relayed for a peer (the peer is charged).", "peer")
	peerForPackets  = desc("peer_relayed_for_packets_total", "Frames this relay relayed for a peer.", "peer")
	peerByBytes     = desc("peer_relayed_by_bytes_total", "Bytes a peer relayed for this relay.", "peer")
	peerByPackets   = desc("peer_relayed_by_packets_total", "Frames a peer relayed for this relay.", "peer")
	peerBalance     = desc("peer_balance_units", "SWAP balance with a peer in ledger units; positive when the peer owes us.", "peer")
	peerSurplus     = desc("peer_surplus_units", "What a peer paid beyond its debt.", "peer")
	peerLimit       = desc("peer_limit_units", "A peer's current disconnect limit (credit line).", "peer")
	peerScore       = desc("peer_score", "A peer's generosity score as this relay measured it.", "peer")
	peerClass       = desc("peer_class", "A peer's class (1 for the current one).", "peer", "class")
	peerChoked      = desc("peer_choked", "1 while a peer's relayed traffic is dropped for debt.", "peer")
	peerConnected   = desc("peer_connected", "1 while a peer's session is up.", "peer")
	peerStatic      = desc("peer_static", "1 for a static lab peer from the configuration, by name and hop authentication (hop: pre-shared key; none: unauthenticated).", "peer", "name", "auth")
	peerChequesIn   = desc("peer_cheques_received_units_total", "Cumulative amount of the cheques accepted from a peer.", "peer")
	peerChequesOut  = desc("peer_cheques_issued_units_total", "Cumulative amount of the cheques issued to a peer.", "peer")
	activePeers     = desc("active_peers", "Connected peers.")
	ownScore        = desc("score", "This relay's generosity score, (relayed_bytes + prior) / (consumed_bytes + prior), from its own measurements.")
	ownClass        = desc("class", "This relay's class by its own score (1 for the current one).", "class")
	ownRelayed      = desc("relayed_bytes", "Bytes this relay relayed for others as it measured them: the sum over peers of peer_relayed_for_bytes_total.")
	ownConsumed     = desc("consumed_bytes", "Bytes others relayed for this relay as it measured them: the sum over peers of peer_relayed_by_bytes_total.")
	attestedScore   = desc("attested_score", "This relay's generosity score computed from what its peers' signed heartbeats say of it.")
	attestedBytes   = desc("attested_bytes", "What this relay's peers' latest signed heartbeats say it relayed for them (relayed) and they relayed for it (consumed).", "direction")
	reportingPeers  = desc("score_reporting_peers", "Peers whose signed counters pool_relay_attested_* are summed from.")
	handshakes      = desc("handshakes_total", "Enrollment handshakes, by result.", "result")
	heartbeats      = desc("heartbeats_total", "Signed heartbeats, by direction.", "direction")
	hbMismatches    = desc("heartbeat_mismatches_total", "Received heartbeats whose counters disagreed with ours beyond the band.")
	cheques         = desc("cheques_total", "Cheques, by outcome.", "outcome")
	journalRecords  = desc("journal_records", "Records in the change journal.")
	journalDegraded = desc("journal_degraded", "1 while the change journal cannot write (a full disk): nothing that needs a record is acknowledged.")
	journalLost     = desc("journal_records_not_written_total", "Records the journal could not write, each gap recorded once it writes again.")
	scrapeSourceErr = desc("scrape_source_errors", "1 when a source failed during this scrape.", "source")

	// Link telemetry from the heartbeats, by source: local (this relay's
	// measure) or claimed (the peer's last signed heartbeat).
	peerRTT        = desc("peer_rtt_seconds", "Heartbeat round trip time of a peer link, as measured locally or claimed by the peer.", "peer", "source")
	peerJitter     = desc("peer_jitter_seconds", "Heartbeat round trip jitter of a peer link, as measured locally or claimed by the peer.", "peer", "source")
	peerLoss       = desc("peer_loss_ratio", "Loss on a peer link (0 to 1): heartbeats lost as measured locally, or the loss the peer claims.", "peer", "source")
	peerThroughput = desc("peer_throughput_bits_per_second", "Throughput of a peer link over the last heartbeat interval, as measured locally or claimed by the peer.", "peer", "source")
	peerMTU        = desc("peer_mtu_bytes", "MTU of a peer link: this relay's (local) or the peer's (claimed).", "peer", "source")
	peerUptime     = desc("peer_uptime_seconds", "Age of the peer's session (local) or the peer's own uptime (claimed).", "peer", "source")
	peerHeartbeat  = desc("peer_heartbeat_sequence", "Sequence number of the last heartbeat accepted from a peer.", "peer")

	// Routes: totals over all, series of their own for the busiest only.
	routesInstalled  = desc("routes", "Relayed routes installed.")
	routesPackets    = desc("routes_packets_total", "Frames relayed on all routes installed, since each was installed (falls when a route goes).")
	routesBytes      = desc("routes_bytes_total", "Outer POOL bytes relayed on all routes installed, since each was installed (falls when a route goes).")
	routesTopN       = desc("route_top_limit", "How many of the busiest routes get series of their own ([ctl] metrics_top_routes).")
	routePackets     = desc("route_packets_total", "Frames relayed on one of the busiest routes since it was installed, by direction.", "session", "from", "to", "direction")
	routeBytes       = desc("route_bytes_total", "Outer POOL bytes relayed on one of the busiest routes since it was installed, by direction.", "session", "from", "to", "direction")
	routeBitsPerSec  = desc("route_rate_bits_per_second", "Rate of one of the busiest routes over the relay's last one-second sample, by direction.", "session", "from", "to", "direction")
	routePacketsRate = desc("route_rate_packets_per_second", "Frame rate of one of the busiest routes over the relay's last one-second sample, by direction.", "session", "from", "to", "direction")
)

// Classes are the class label values of the state-set series, in
// score.Class order.
var classes = []string{"heavy_consumer", "light_consumer", "balanced", "major_contributor"}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("pool_relay_"+name, help, labels, nil)
}

// collector turns the sources into constant metrics at each scrape.
type collector struct {
	src     Source
	timeout time.Duration
	top     int
}

// Describe sends nothing: the collector is unchecked, because which series
// exist depends on the peers and ports of the moment.
func (c *collector) Describe(chan<- *prometheus.Desc) {}

// Collect reads every source and emits its series.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	emit := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, v, labels...)
	}
	failed := func(source string, err error) {
		emit(scrapeSourceErr, prometheus.GaugeValue, 1, source)
		ch <- prometheus.NewInvalidMetric(desc("source_"+source, "failed source", nil...), fmt.Errorf("metrics: %s: %w", source, err))
	}
	ok := func(source string) { emit(scrapeSourceErr, prometheus.GaugeValue, 0, source) }

	if c.src.Stats != nil {
		if st, err := c.src.Stats(ctx); err != nil {
			failed("stats", err)
		} else {
			ok("stats")
			for _, p := range st.Ports {
				emit(portRxPackets, prometheus.CounterValue, float64(p.RxPackets), p.Name)
				emit(portRxBytes, prometheus.CounterValue, float64(p.RxBytes), p.Name)
				emit(portTxPackets, prometheus.CounterValue, float64(p.TxPackets), p.Name)
				emit(portTxBytes, prometheus.CounterValue, float64(p.TxBytes), p.Name)
				emit(portMissed, prometheus.CounterValue, float64(p.Missed), p.Name)
			}
			for _, d := range st.Drops {
				emit(drops, prometheus.CounterValue, float64(d.Packets), d.Reason)
			}
			for name, n := range st.Events {
				emit(events, prometheus.CounterValue, float64(n), name)
			}
			for _, q := range st.Queues {
				l := []string{q.Port, strconv.Itoa(q.Queue), q.Class}
				emit(queueSentPackets, prometheus.CounterValue, float64(q.SentPackets), l...)
				emit(queueSentBytes, prometheus.CounterValue, float64(q.SentBytes), l...)
				emit(queueDropped, prometheus.CounterValue, float64(q.Dropped), l...)
				emit(queueDepth, prometheus.GaugeValue, float64(q.Depth), l...)
				emit(schedShare, prometheus.GaugeValue, q.Share, l...)
			}
		}
	}
	if c.src.Peers != nil {
		if ps, err := c.src.Peers(ctx); err != nil {
			failed("peers", err)
		} else {
			ok("peers")
			active := 0
			for _, p := range ps {
				emit(peerForBytes, prometheus.CounterValue, float64(p.RelayedForBytes), p.ID)
				emit(peerForPackets, prometheus.CounterValue, float64(p.RelayedForPackets), p.ID)
				emit(peerByBytes, prometheus.CounterValue, float64(p.RelayedByBytes), p.ID)
				emit(peerByPackets, prometheus.CounterValue, float64(p.RelayedByPackets), p.ID)
				emit(peerBalance, prometheus.GaugeValue, float64(p.Balance), p.ID)
				emit(peerSurplus, prometheus.GaugeValue, float64(p.Surplus), p.ID)
				emit(peerLimit, prometheus.GaugeValue, float64(p.Limit), p.ID)
				emit(peerScore, prometheus.GaugeValue, p.Score, p.ID)
				for _, cl := range classes {
					emit(peerClass, prometheus.GaugeValue, b2f(cl == p.Class), p.ID, cl)
				}
				emit(peerChoked, prometheus.GaugeValue, b2f(p.Choked), p.ID)
				emit(peerConnected, prometheus.GaugeValue, b2f(p.Connected), p.ID)
				if p.Static != "" {
					emit(peerStatic, prometheus.GaugeValue, 1, p.ID, p.Static, p.Auth)
				}
				emit(peerChequesIn, prometheus.CounterValue, float64(p.ChequesIn), p.ID)
				emit(peerChequesOut, prometheus.CounterValue, float64(p.ChequesOut), p.ID)
				if tel := p.Telemetry; tel != nil {
					for _, l := range []struct {
						source string
						t      *api.LinkTelemetry
					}{{"local", &tel.Local}, {"claimed", &tel.Claimed}} {
						emit(peerRTT, prometheus.GaugeValue, time.Duration(l.t.RTT).Seconds(), p.ID, l.source)
						emit(peerJitter, prometheus.GaugeValue, time.Duration(l.t.Jitter).Seconds(), p.ID, l.source)
						emit(peerLoss, prometheus.GaugeValue, float64(l.t.LossPPM)/1e6, p.ID, l.source)
						emit(peerThroughput, prometheus.GaugeValue, float64(l.t.ThroughputBPS), p.ID, l.source)
						emit(peerMTU, prometheus.GaugeValue, float64(l.t.MTU), p.ID, l.source)
						emit(peerUptime, prometheus.GaugeValue, time.Duration(l.t.Uptime).Seconds(), p.ID, l.source)
					}
					emit(peerHeartbeat, prometheus.GaugeValue, float64(tel.Heartbeats), p.ID)
				}
				if p.Connected {
					active++
				}
			}
			emit(activePeers, prometheus.GaugeValue, float64(active))
		}
	}
	if c.src.Score != nil {
		if s, err := c.src.Score(ctx); err != nil {
			failed("score", err)
		} else {
			ok("score")
			emit(ownScore, prometheus.GaugeValue, s.Own)
			for _, cl := range classes {
				emit(ownClass, prometheus.GaugeValue, b2f(cl == s.Class), cl)
			}
			// Counters: sums of the accounts' cumulative counters, kept
			// across restarts and never removed.
			emit(ownRelayed, prometheus.CounterValue, float64(s.Relayed))
			emit(ownConsumed, prometheus.CounterValue, float64(s.Consumed))
			// Gauges: sums of the latest reports of the peers heard since
			// the daemon started, which restart from zero with it.
			emit(attestedScore, prometheus.GaugeValue, s.Attested.Score)
			emit(attestedBytes, prometheus.GaugeValue, float64(s.Attested.Relayed), "relayed")
			emit(attestedBytes, prometheus.GaugeValue, float64(s.Attested.Consumed), "consumed")
			emit(reportingPeers, prometheus.GaugeValue, float64(s.Attested.ReportingPeers))
		}
	}
	if c.src.Routes != nil {
		if rs, err := c.src.Routes(ctx); err != nil {
			failed("routes", err)
		} else {
			ok("routes")
			c.routes(rs, emit)
		}
	}
	if c.src.Control != nil {
		if k, err := c.src.Control(ctx); err != nil {
			failed("control", err)
		} else {
			ok("control")
			emit(handshakes, prometheus.CounterValue, float64(k.HandshakesOK), "ok")
			emit(handshakes, prometheus.CounterValue, float64(k.HandshakesFailed), "failed")
			emit(heartbeats, prometheus.CounterValue, float64(k.HeartbeatsSent), "sent")
			emit(heartbeats, prometheus.CounterValue, float64(k.HeartbeatsReceived), "received")
			emit(hbMismatches, prometheus.CounterValue, float64(k.HeartbeatMismatches))
			emit(cheques, prometheus.CounterValue, float64(k.ChequesIssued), "issued")
			emit(cheques, prometheus.CounterValue, float64(k.ChequesReceived), "received")
			emit(cheques, prometheus.CounterValue, float64(k.ChequesRejected), "rejected")
			emit(cheques, prometheus.CounterValue, float64(k.ChequesDeferred), "deferred_journal")
			emit(journalRecords, prometheus.GaugeValue, float64(k.JournalRecords))
			degraded := 0.0
			if k.JournalDegraded {
				degraded = 1
			}
			emit(journalDegraded, prometheus.GaugeValue, degraded)
			emit(journalLost, prometheus.CounterValue, float64(k.JournalNotWritten))
		}
	}
}

// routes emits the route totals and the series of the c.top busiest
// routes: by rate, which is what an operator looks for, rather than by
// total, which would keep an old idle route in the set for good.
func (c *collector) routes(rs []api.Route, emit func(*prometheus.Desc, prometheus.ValueType, float64, ...string)) {
	var pkts, bytes uint64
	for _, r := range rs {
		pkts += r.Packets
		bytes += r.Bytes
	}
	emit(routesInstalled, prometheus.GaugeValue, float64(len(rs)))
	emit(routesPackets, prometheus.GaugeValue, float64(pkts))
	emit(routesBytes, prometheus.GaugeValue, float64(bytes))
	emit(routesTopN, prometheus.GaugeValue, float64(c.top))
	for _, r := range Busiest(rs, c.top) {
		for _, d := range []struct {
			dir string
			t   *api.RouteTraffic
		}{{"forward", &r.Forward}, {"reverse", &r.Reverse}} {
			l := []string{r.Session, r.From, r.To, d.dir}
			emit(routePackets, prometheus.CounterValue, float64(d.t.Packets), l...)
			emit(routeBytes, prometheus.CounterValue, float64(d.t.Bytes), l...)
			emit(routeBitsPerSec, prometheus.GaugeValue, d.t.BPS, l...)
			emit(routePacketsRate, prometheus.GaugeValue, d.t.PPS, l...)
		}
	}
}

// Busiest returns the n busiest of rs (fewer if there are fewer), the
// busiest first: by bits per second, then frames per second, then bytes,
// then session id, so that the choice is stable between scrapes of equal
// rates. It sorts a copy and leaves rs alone.
func Busiest(rs []api.Route, n int) []api.Route {
	if n <= 0 || len(rs) == 0 {
		return nil
	}
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b api.Route) int {
		return cmp.Or(cmp.Compare(b.BPS, a.BPS), cmp.Compare(b.PPS, a.PPS), cmp.Compare(b.Bytes, a.Bytes), cmp.Compare(a.Session, b.Session))
	})
	return s[:min(n, len(s))]
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
