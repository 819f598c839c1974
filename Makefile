# poolrelay build, test and benchmark targets. `make test` and `make demo` work
# on a fresh Debian 12 machine: `deps` installs whatever is missing first.

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO      ?= go
BIN     := bin
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X main.version=$(VERSION)

# Debian packages the build and the tests need: DPDK 22.11 and its headers for
# the cgo binding, pkg-config to find them, iproute2 for the network-namespace
# tests (ethtool turns veth checksum offload off for them). libdpdk-dev pulls in the -dev packages of the PMDs (libpcap, libbpf, ...).
# libipsec-mb-dev is intel-ipsec-mb, which computes the workers' hop MACs (dataplane/dpdk/hopmac.c).
DEB_PKGS := dpdk dpdk-dev libdpdk-dev libipsec-mb-dev pkg-config gcc libc6-dev iproute2 ethtool

# Short fuzz runs per target in `make fuzz`.
FUZZTIME ?= 10s

.PHONY: all deps build test lint bench fuzz crash-test bench-sched bench-crypto bench-tables bench-dataplane bench-control bench-gen bench-daemon bench-pktgen gen install demo bench-sched-port bench-dataplane-sweep bench-ledger sim clean crash-test-daemon

all: build

## deps: install the Debian packages that are missing (idempotent) and the Go modules.
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "deps: root is needed to install$$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@$(GO) mod download

## build: the pool_relay binary and the tools, into bin/.
build: deps
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

## lint: gofmt, go vet, and a build with cgo off (only the DPDK binding may need cgo).
lint: deps
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) build ./...

## demo: three relays on DPDK (net_af_packet, --no-huge) and two end nodes in network namespaces; POOL traffic, status, peers, cheques, journals (root).
demo: build
	$(BIN)/pool_demo --bin $(BIN)

## test: every test, including those that need DPDK and root.
test: deps lint
	$(GO) test -count=1 -timeout 15m ./...

## bench: every Go benchmark, with allocation counts.
bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./...

## fuzz: a short run of every fuzz target (FUZZTIME each).
fuzz: deps
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
	  pkg=./$$(dirname $$f); \
	  for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | cut -c6-); do \
	    echo "fuzz: $$pkg $$t"; \
	    $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s $$pkg; \
	  done; \
	done

## bench-sched: egress scheduler under overload (shares, drops, p50/p99, ns/frame); writes bench/results/sched.{csv,png}.
bench-sched: deps
	$(GO) test -run '^$$' -bench EnqueueDrain -benchmem -count 5 ./dataplane/egress
	$(GO) run ./bench/sched

## bench-sched-port: the bench-sched cases through egress.Port on net_ring, real mbufs and tx_burst (root; ~25 s).
bench-sched-port: deps
	$(GO) run ./bench/sched -port net_ring0

## bench-crypto: the crypto core's benchmarks (handshakes, challenges, signatures, hop MACs); cpu-ns/op is the cost on a shared machine.
bench-crypto: deps
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./crypto/...

## bench-tables: route table lookups at 1K/100K/1M routes, updates, and per-core counter cost.
bench-tables: deps
	$(GO) test -run '^$$' -bench Lookup -benchtime 1000000x -count 5 ./dataplane/route
	$(GO) test -run '^$$' -bench 'Update' -benchtime 3000x -count 5 ./dataplane/route
	$(GO) test -run '^$$' -bench 'BulkInstall' -count 3 ./dataplane/route
	$(GO) test -run '^$$' -bench . -count 5 ./dataplane/counters

## bench-dataplane: dpdk-testpmd (io, macswap), the DPDK binding and the relay (direct, through egress, with hop auth) side by side on 2x net_null, then the pool generator feeding testpmd and the relay over net_memif (prints memif: relay_mpps=... first), and the relay with hop auth at 1500 B (relay_auth_1500_gbps=X testpmd_macswap_1500_gbps=Y ratio=Z, first of the summary); same core and memory mode; ends relay_mpps=X testpmd_macswap_mpps=Y ratio=Z (root; ~185 s; -only REGEX runs a subset of the net_null rows, -memif=false skips memif).
bench-dataplane: deps
	$(GO) run ./bench/dataplane

## bench-dataplane-sweep: relay worker over 1K/100K/1M routes x 128/512/1500 B on net_null (auth off); writes bench/results/dataplane_sweep.{csv,png}, 3 interleaved rounds, median per cell and per-round 1M/1K ratios (root; ~3 min).
bench-dataplane-sweep: deps
	POOLRELAY_SWEEP=1 $(GO) test -run '^$$' -bench RelaySweep -benchtime 1x -timeout 20m ./bench/dataplane

## bench-control: control-core costs (enrollment, stateless CHALLENGE, heartbeat sign/verify, hop MAC at 128/1500 B in Go and through intel-ipsec-mb) and the relay with hop auth on and off at 128/1500 B on net_null; ends with handshakes_per_s=X hopauth_gbps_1500=Y hopauth_mpps_128=Z (root; ~4 min).
bench-control: deps
	$(GO) run ./bench/control

## bench-ledger: durable journal appends/s (group commit, 1-64 writers), ledger updates/s, cheque verifications/s and durable receipts/s.
bench-ledger: deps
	$(GO) test -run '^$$' -bench 'AppendDurable|Observe|ReceiveCheque|Verify$$|Sign$$' -benchtime 2000x -count 3 ./ledger/...

## sim: the incentive simulation, 10,000 relays on the real ledger and scheduler (go doc ./sim); writes bench/results/sim.{csv,png} and sim_classes.csv, prints wall time and peak RSS; ends with sim: relays=... (about 6 min on 2 cores).
sim: deps
	$(GO) build -o $(BIN)/pool_sim ./cmd/pool_sim
	$(BIN)/pool_sim -relays 10000

## crash-test: SIGKILL a ledger/journal writer 200 times; ends with kills=N lost=0 chain_ok=true.
crash-test: deps
	$(GO) run ./cmd/pool_ledger_crashtest -kills 200

## crash-test-daemon: two relays and two end nodes in namespaces (DPDK net_af_packet on veths), cheques flowing; a relay SIGKILLed at random moments 100 times and restarted with no operator action; ends with daemon_kills=N lost=0 chain_ok=true reconnect_p99_s=X (root; ~10 min).
crash-test-daemon: build
	$(BIN)/pool_crashtest --bin $(BIN) --kills 100

## gen: regenerate the Pktgen-DPDK captures in bench/pktgen (deterministic; its test checks them).
gen: deps
	$(GO) generate ./bench/pktgen

## bench-gen: pool_gen against itself on a net_ring loopback, prefill vs build (root; ~15 s).
bench-gen: build
	for m in prefill build; do $(BIN)/pool_gen --port net_ring0 --cores 0,1 --size 128 --sessions 1024 --duration 5s --mode $$m --table 0; done

## bench-daemon: `pool_relay start` on configs/bench-vhost.toml (vhost-user pair, static lab peers, hop auth on) driven by pool_gen from the virtio-user side, 1024 sessions, 128 and 1500 B, counters read over the control socket; beside the engine alone on the same vdevs; ends daemon_relay_mpps_128=X daemon_relay_gbps_1500=Y engine_ratio=R drops=D (root; ~2 min; BENCH_DAEMON_ARGS='-rounds 1 -duration 2s' for a short run).
bench-daemon: build
	$(GO) run ./bench/daemon -bin $(BIN) $(BENCH_DAEMON_ARGS)

## bench-pktgen: Pktgen-DPDK 23.06.1 (PKTGEN=its built source tree, see bench/pktgen/README.md) replays bench/pktgen's captures into dpdk-testpmd io and into `pool_relay start` on configs/bench-vhost-pktgen.toml over the same vhost-user pairs; rates side by side (root; ~2 min; ROUNDS, DURATION, SIZES as in bench/pktgen/run.sh).
bench-pktgen: build
	PKTGEN="$(PKTGEN)" POOL_RELAY=$(CURDIR)/$(BIN)/pool_relay bench/pktgen/run.sh

## install: binary, systemd unit, sysusers entry and NIC guide (root); keeps an existing /etc/pool_relay/relay.toml.
install: build
	install -m 0755 $(BIN)/pool_relay /usr/local/bin/pool_relay
	install -D -m 0644 deploy/pool-relay.service /etc/systemd/system/pool-relay.service
	install -D -m 0644 deploy/pool-relay.sysusers /usr/lib/sysusers.d/pool-relay.conf
	install -D -m 0644 deploy/NIC-BINDING.md /usr/share/doc/pool_relay/NIC-BINDING.md
	systemd-sysusers
	test -e /etc/pool_relay/relay.toml || install -D -m 0640 -g pool_relay configs/edge.toml /etc/pool_relay/relay.toml
	systemctl daemon-reload

clean:
	rm -rf $(BIN)
