package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// relaySizes are the frame sizes the relay is measured at.
var relaySizes = []int{128, 1500}

// The rows of bench/dataplane's table this driver reads: the relay worker
// with hop authentication (verify at ingress, new seq and MAC at egress)
// and without.
const (
	rowAuth   = "relay"
	rowNoAuth = "relay noauth"
)

// buildDataplane builds bench/dataplane into dir and returns the binary's
// path: once for both sizes, and first, so that a tree that does not build
// stops the driver before the micro-benchmarks have taken their minutes.
func buildDataplane(ctx context.Context, c *config, dir string, log io.Writer) (string, error) {
	bin := filepath.Join(dir, "dataplane")
	args := []string{"build", "-o", bin, "./bench/dataplane"}
	fmt.Fprintf(log, "bench: %s %s\n", c.goCmd, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, c.goCmd, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("bench: building bench/dataplane: %w", err)
	}
	return bin, nil
}

// dataplaneBench runs the bench/dataplane binary bin for one frame size and
// returns its standard output; its progress (standard error) and the output
// go to log.
func dataplaneBench(ctx context.Context, c *config, bin string, size int, log io.Writer) ([]byte, error) {
	// The memif section and the extra 1500 B hop-auth run are not read
	// here (the driver runs its own 1500 B pass): skipping them saves a
	// minute per size.
	args := []string{"-rounds", strconv.Itoa(c.rounds), "-seconds", strconv.Itoa(c.seconds), "-size", strconv.Itoa(size),
		"-memif=false", "-auth1500=false"}
	if c.noHuge {
		args = append(args, "-no-huge")
	}
	fmt.Fprintf(log, "bench: bench/dataplane %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, log
	err := cmd.Run()
	log.Write(out.Bytes())
	if err != nil {
		return nil, fmt.Errorf("bench: bench/dataplane -size %d: %w", size, err)
	}
	return out.Bytes(), nil
}

// relayRow is one relay row of bench/dataplane's table.
type relayRow struct {
	// mpps is the median rate of frames relayed (sent) per second, in
	// millions; min and max the range of its samples.
	mpps, min, max float64
	// dropped and txRefused are the worker's drops and the frames the PMD
	// refused, over the runs; drops the per-reason drop line.
	dropped, txRefused uint64
	drops              string
}

// dataplaneResult is what one bench/dataplane run said about the relay.
type dataplaneResult struct {
	auth, noAuth relayRow
}

// parseDataplane reads bench/dataplane's report: the table rows
//
//	relay noauth  12.34  [11.00-13.00]  0.50x testpmd macswap  0.49  0  0
//	relay         10.00  [9.00-11.00]   0.40x testpmd macswap  0.41  0  0
//
// (name, median Mpps, [min-max], ratio, ratios per round, dropped, TX
// refused), the lines "relay: drops none; harness ..." and the summary
// lines "relay_noauth_mpps=X ..." and "relay_mpps=X ...", whose rates must
// agree with the table's. The memif section (from a line "memif: ..." to
// the next blank line) has rows of the same names with other columns and
// a relay_mpps= of its own: it is skipped.
func parseDataplane(out []byte) (dataplaneResult, error) {
	var res dataplaneResult
	rows := map[string]*relayRow{rowAuth: &res.auth, rowNoAuth: &res.noAuth}
	found := map[string]bool{}
	summary := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	inMemif := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "memif:") {
			inMemif = true
		}
		if inMemif {
			inMemif = strings.TrimSpace(line) != ""
			continue
		}
		for name, row := range rows {
			if rest, ok := strings.CutPrefix(line, name+": drops "); ok {
				row.drops, _, _ = strings.Cut(rest, ";")
			}
			if ok, err := parseRelayRow(line, name, row); err != nil {
				return res, err
			} else if ok {
				found[name] = true
			}
		}
		for _, f := range strings.Fields(line) {
			if k, v, ok := strings.Cut(f, "="); ok {
				if x, err := strconv.ParseFloat(v, 64); err == nil {
					summary[k] = x
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return res, err
	}
	for name, row := range rows {
		key := strings.ReplaceAll(name, " ", "_") + "_mpps"
		s, ok := summary[key]
		switch {
		case !found[name]:
			return res, fmt.Errorf("no %q row in the table", name)
		case !ok:
			return res, fmt.Errorf("no %s= summary line", key)
		case fmt.Sprintf("%.2f", s) != fmt.Sprintf("%.2f", row.mpps):
			return res, fmt.Errorf("%q: the table says %.2f Mpps, the summary %s=%.2f", name, row.mpps, key, s)
		}
	}
	return res, nil
}

// parseRelayRow parses line into row if it is the table row of name, and
// reports whether it was. A line that starts like the row but does not
// parse is an error; other lines (the drop lines "relay: ...", the other
// relay row) are not the row.
func parseRelayRow(line, name string, row *relayRow) (bool, error) {
	rest, ok := strings.CutPrefix(line, name)
	if !ok || rest == "" || rest[0] != ' ' {
		return false, nil
	}
	f := strings.Fields(rest)
	if len(f) < 4 {
		return false, nil
	}
	mpps, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return false, nil // "relay noauth ..." seen as "relay" + "noauth ..."
	}
	lo, hi, ok := strings.Cut(strings.Trim(f[1], "[]"), "-")
	if !ok || !strings.HasPrefix(f[1], "[") {
		return false, fmt.Errorf("%q row: range %q is not [min-max]", name, f[1])
	}
	var r relayRow
	r.mpps = mpps
	if r.min, err = strconv.ParseFloat(lo, 64); err != nil {
		return false, fmt.Errorf("%q row: %w", name, err)
	}
	if r.max, err = strconv.ParseFloat(hi, 64); err != nil {
		return false, fmt.Errorf("%q row: %w", name, err)
	}
	if r.dropped, err = strconv.ParseUint(f[len(f)-2], 10, 64); err != nil {
		return false, fmt.Errorf("%q row: dropped: %w", name, err)
	}
	if r.txRefused, err = strconv.ParseUint(f[len(f)-1], 10, 64); err != nil {
		return false, fmt.Errorf("%q row: tx refused: %w", name, err)
	}
	r.drops = row.drops
	*row = r
	return true, nil
}
