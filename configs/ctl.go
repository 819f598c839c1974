package configs

import (
	"net/netip"
	"path/filepath"

	"github.com/poolrelay/poolrelay/internal/confcheck"
)

// CtlConfig is the [ctl] section: where the operator surface listens (the
// control socket of package ctl/socket, the exporter of package ctl/metrics).
// It lives here, not in ctl/, because the assembly (package daemon) hands these
// values to the operator packages as plain options: the configuration format
// depends on no operator package.
type CtlConfig struct {
	// Socket is the path of the control socket that the pool_relay CLI talks to.
	Socket string `toml:"socket"`
	// MetricsListen is the address of the Prometheus exporter. Loopback by
	// default: metrics reveal peers and balances. Empty disables it.
	MetricsListen string `toml:"metrics_listen"`
	// MetricsTopRoutes is how many of the busiest routes (by rate) get
	// series of their own: the bound on the route series' cardinality.
	MetricsTopRoutes int `toml:"metrics_top_routes"`
}

// MaxMetricsTopRoutes bounds metrics_top_routes: each route is eight
// series, and a scrape of thousands of them is a scraper's trouble.
const MaxMetricsTopRoutes = 1000

// DefaultCtlConfig returns the [ctl] defaults documented in default.toml.
func DefaultCtlConfig() CtlConfig {
	return CtlConfig{Socket: "/run/pool_relay/ctl.sock", MetricsListen: "127.0.0.1:9464", MetricsTopRoutes: 10}
}

// Validate checks the [ctl] section.
func (c CtlConfig) Validate(errs confcheck.Errors) {
	if c.Socket == "" || !filepath.IsAbs(c.Socket) {
		errs.Addf("socket", "%q must be an absolute path", c.Socket)
	} else if len(c.Socket) > 107 {
		// sun_path holds 108 bytes including the terminating NUL.
		errs.Addf("socket", "path is %d bytes: a Unix socket path must be at most 107", len(c.Socket))
	}
	if c.MetricsTopRoutes < 0 || c.MetricsTopRoutes > MaxMetricsTopRoutes {
		errs.Addf("metrics_top_routes", "%d is out of range: use 0 to %d", c.MetricsTopRoutes, MaxMetricsTopRoutes)
	}
	if c.MetricsListen != "" {
		if _, err := netip.ParseAddrPort(c.MetricsListen); err != nil {
			errs.Addf("metrics_listen", "%q is not an address:port such as 127.0.0.1:9464", c.MetricsListen)
		}
	}
}
