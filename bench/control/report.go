package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// microRow is one line of the report's first table: a micro-benchmark, the
// rate it is read as, and the target for that rate.
type microRow struct {
	label, bench string
	// target is the per-core rate wanted, per second (0: none).
	target float64
	// size, for the hop MAC, is the frame size: the row also shows the
	// Gbps a core could relay if the MAC were its only work.
	size int
	// optional rows are left out when their benchmark did not run.
	optional bool
}

// The hop MAC through intel-ipsec-mb, as the worker computes it: a verify
// and a sign per frame, 32 frames to a cgo call (dataplane/dpdk).
const (
	gmacBench128  = "BenchmarkGMAC/batch/128"
	gmacBench1500 = "BenchmarkGMAC/batch/1500"
)

// The targets, per core.
const (
	targetHandshakes = 2000   // enrollments (handshakes) per second
	targetChallenges = 500000 // stateless CHALLENGEs per second
	targetGbps1500   = 40     // relayed Gbps at 1500 B with hop authentication
	targetMpps128    = 10     // relayed Mpps at 128 B with hop authentication
)

// enrollBench is the benchmark the summary's handshakes_per_s comes from.
const enrollBench = "BenchmarkEnroll"

var microRows = []microRow{
	{label: "enrollment, relay side, returning peer (handshake, ledger, keys, TERMS)", bench: enrollBench, target: targetHandshakes},
	{label: "handshake alone, responder, new peer (Accept)", bench: "BenchmarkAccept/new-peer"},
	{label: "X25519, the unit of both", bench: "BenchmarkX25519"},
	{label: "CHALLENGE, stateless (INIT flood)", bench: "BenchmarkChallenge", target: targetChallenges},
	{label: "heartbeat sign (Ed25519)", bench: "BenchmarkHeartbeatSign"},
	{label: "heartbeat verify", bench: "BenchmarkHeartbeatVerify"},
	{label: "hop MAC verify + re-sign, 128 B", bench: "BenchmarkRelayHop/128", size: 128},
	{label: "hop MAC verify + re-sign, 1500 B", bench: "BenchmarkRelayHop/1500", size: 1500},
	{label: "hop MAC verify, 128 B", bench: "BenchmarkVerify/128", size: 128},
	{label: "hop MAC verify, 1500 B", bench: "BenchmarkVerify/1500", size: 1500},
	{label: "hop MAC sign, 128 B", bench: "BenchmarkSign/128", size: 128},
	{label: "hop MAC sign, 1500 B", bench: "BenchmarkSign/1500", size: 1500},
	{label: "hop MAC verify + re-sign, 128 B, intel-ipsec-mb (the worker's)", bench: gmacBench128, size: 128, optional: true},
	{label: "hop MAC verify + re-sign, 1500 B, intel-ipsec-mb (the worker's)", bench: gmacBench1500, size: 1500, optional: true},
}

// report is everything measured, checked for completeness.
type report struct {
	micro  map[string]benchStats
	relays map[int]dataplaneResult
}

// newReport checks that every row's benchmark and every relay size was
// measured.
func newReport(micro map[string]benchStats, relays map[int]dataplaneResult) (*report, error) {
	for _, r := range microRows {
		if s, ok := micro[r.bench]; (!ok || len(s.nsOp) == 0) && !r.optional {
			return nil, fmt.Errorf("bench: no result for %s", r.bench)
		}
	}
	for _, size := range relaySizes {
		if _, ok := relays[size]; !ok {
			return nil, fmt.Errorf("bench: no relay result at %d B", size)
		}
	}
	return &report{micro: micro, relays: relays}, nil
}

// perSecond returns the per-core rate of a micro-benchmark and whether it
// was computed from CPU time.
func (r *report) perSecond(bench string) (float64, bool) {
	ns, cpu := r.micro[bench].cost()
	if ns <= 0 {
		return 0, cpu
	}
	return 1e9 / ns, cpu
}

// gbps is the rate in Gbps of mpps frames of size bytes per second
// (Ethernet frames without preamble and inter-frame gap).
func gbps(mpps float64, size int) float64 { return mpps * float64(size) * 8 / 1e3 }

// summary returns the three figures of the last line.
func (r *report) summary() (handshakes, gbps1500, mpps128 float64) {
	handshakes, _ = r.perSecond(enrollBench)
	return handshakes, gbps(r.relays[1500].auth.mpps, 1500), r.relays[128].auth.mpps
}

func (r *report) print(w io.Writer, c *config) {
	fmt.Fprintf(w, "control-core benchmark: per core (one goroutine, one relay worker core); figures, never pass/fail\n")
	fmt.Fprintf(w, "micro-benchmarks: median of %d go test runs (-benchtime %s); rate = 1/cost, cost from cpu-ns/op where the benchmark reports it\n\n", c.count, c.benchtime)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tcost\tbasis\tper core\ttarget")
	for _, m := range microRows {
		if len(r.micro[m.bench].nsOp) == 0 {
			continue // an optional row that did not run
		}
		ns, cpu := r.micro[m.bench].cost()
		rate, _ := r.perSecond(m.bench)
		basis := "wall"
		if cpu {
			basis = "cpu"
		}
		target := ""
		switch {
		case m.target > 0:
			target = fmt.Sprintf(">= %s/s: %s", count(m.target), met(rate >= m.target))
		case m.size > 0:
			target = fmt.Sprintf("alone caps a core at %.1f Gbps", gbps(rate/1e6, m.size))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s/s\t%s\n", m.label, duration(ns), basis, count(rate), target)
	}
	tw.Flush()

	fmt.Fprintf(w, "\nrelay worker on net_null (bench/dataplane, %d round(s) x %d s per size): Mpps = frames relayed per second, median [min-max]\n\n", c.rounds, c.seconds)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "frame\thop auth\tMpps\t[min-max]\tGbps\tdropped\tdrops by reason\ttarget")
	for _, size := range relaySizes {
		res := r.relays[size]
		for _, row := range []struct {
			auth bool
			r    relayRow
		}{{false, res.noAuth}, {true, res.auth}} {
			on, target := "off", ""
			if row.auth {
				on = "on"
				switch size {
				case 128:
					target = fmt.Sprintf(">= %d Mpps: %s", targetMpps128, met(row.r.mpps >= targetMpps128))
				case 1500:
					target = fmt.Sprintf(">= %d Gbps: %s", targetGbps1500, met(gbps(row.r.mpps, size) >= targetGbps1500))
				}
			}
			fmt.Fprintf(tw, "%d B\t%s\t%.2f\t[%.2f-%.2f]\t%.2f\t%d\t%s\t%s\n", size, on, row.r.mpps, row.r.min, row.r.max,
				gbps(row.r.mpps, size), row.r.dropped, row.r.drops, target)
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, size := range relaySizes {
		if res := r.relays[size]; res.noAuth.mpps > 0 {
			fmt.Fprintf(w, "hop authentication costs the relay %.0f%% of its rate at %d B\n", 100*(1-res.auth.mpps/res.noAuth.mpps), size)
		}
	}
	h, g, m := r.summary()
	fmt.Fprintf(w, "handshakes_per_s=%.0f hopauth_gbps_1500=%.2f hopauth_mpps_128=%.2f\n", h, g, m)
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// duration formats ns with a unit that keeps three significant digits.
func duration(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f us", ns/1e3)
	}
	return fmt.Sprintf("%.1f ns", ns)
}

// count formats a rate with thousands separators.
func count(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
