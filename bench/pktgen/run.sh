#!/usr/bin/env bash
# run.sh: replay the POOL captures of this directory with Pktgen-DPDK into
# dpdk-testpmd (io forwarding) and into a running `pool_relay start`, on the
# same vhost-user/virtio-user vdevs, in the same run, and print the
# forwarded rates side by side. See README.md for building Pktgen and for
# what the figures mean.
#
#   PKTGEN=/path/to/Pktgen-DPDK bench/pktgen/run.sh
#
# Settings (environment, all optional but PKTGEN):
#   PKTGEN       Pktgen-DPDK source tree with build/app/pktgen built with Lua
#   CONFIG       relay configuration        (configs/bench-vhost-pktgen.toml)
#   TARGETS      what Pktgen sends to       ("testpmd relay")
#   SIZES        capture frame sizes        ("128 1500")
#   ROUNDS       rounds of every target and size, alternated (1)
#   DURATION     seconds Pktgen samples per run (10)
#   RATE         percent of the link speed Pktgen sends at (100)
#   PKTGEN_MB    hugepage memory for Pktgen per port (1400)
#   PKTGEN_NO_HUGE=1  Pktgen on ordinary pages instead (--no-huge -m, 1600
#                MB per port: its pools do not fit 1400 there)
#   TARGET_MB    memory of testpmd (1024), on hugepages unless the relay's
#                configuration says no_huge, when testpmd runs --no-huge as
#                the relay does
#   TESTPMD      dpdk-testpmd binary        (dpdk-testpmd)
#   POOL_RELAY   pool_relay binary          (built into the scratch directory)
#   MACS         MACs of Pktgen's ports     ("02:00:00:00:00:01 02:00:00:00:00:03",
#                the captures' source and the relay's next hop on p1)
#   NPORTS       ports when only testpmd runs (2; with the relay, its ports)
#   KEEP=1       keep the scratch directory with every log
#
# Cores (two-core layout): the target's main lcore runs on CPU 0 and its
# forwarding lcore on CPU 1; Pktgen's RX/TX lcore runs on CPU 0 and its
# main lcore (screen, Lua) on CPU 1. Override with TARGET_CORES (testpmd -l),
# PKTGEN_LCORES (Pktgen --lcores); the relay takes its cores from CONFIG.
#
# Everything the script creates (processes, vhost sockets, the hugepages it
# reserved, its hugetlbfs mount, /var/run/dpdk entries of its file
# prefixes) is removed on exit, also when interrupted.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

: "${PKTGEN:?set PKTGEN to the Pktgen-DPDK source tree (see README.md)}"
CONFIG=${CONFIG:-$repo/configs/bench-vhost-pktgen.toml}
TARGETS=${TARGETS:-testpmd relay}
SIZES=${SIZES:-128 1500}
ROUNDS=${ROUNDS:-1}
DURATION=${DURATION:-10}
RATE=${RATE:-100}
PKTGEN_MB=${PKTGEN_MB:-1400}
TARGET_MB=${TARGET_MB:-1024}
TESTPMD=${TESTPMD:-dpdk-testpmd}
TARGET_CORES=${TARGET_CORES:-0-1}
PKTGEN_LCORES=${PKTGEN_LCORES:-0@1,1@0}
read -r -a macs <<<"${MACS:-02:00:00:00:00:01 02:00:00:00:00:03}"

die() { echo "run.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (hugepages, vhost-user sockets)"
[ -x "$PKTGEN/build/app/pktgen" ] || die "no $PKTGEN/build/app/pktgen: build Pktgen first (README.md)"
[ -f "$PKTGEN/Pktgen.lua" ] || die "no $PKTGEN/Pktgen.lua: PKTGEN must be the source tree"
command -v script >/dev/null || die "needs script(1) (bsdutils): Pktgen wants a terminal"
for t in $TARGETS; do
	case $t in
	testpmd) command -v "$TESTPMD" >/dev/null || die "no $TESTPMD (apt-get install dpdk)" ;;
	relay)
		[ -f "$CONFIG" ] || die "no relay configuration $CONFIG"
		command -v jq >/dev/null || die "needs jq to read pool_relay stats --json"
		;;
	*) die "unknown target $t (testpmd or relay)" ;;
	esac
done

work=$(mktemp -d /tmp/pktgen-bench.XXXXXX)
prefix=pgbench$$
pids=()
added=0
mounted=""
prefixes=("${prefix}_pg")

cleanup() {
	local rc=$?
	set +e
	if [ -s "$work/pktgen.pid" ]; then
		local pg
		pg=$(cat "$work/pktgen.pid")
		kill -TERM "$pg" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$pg" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pg" 2>/dev/null
	fi
	for p in "${pids[@]}"; do
		kill -INT "$p" 2>/dev/null
	done
	for p in "${pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	[ -n "$mounted" ] && { umount "$mounted" || echo "run.sh: could not unmount $mounted" >&2; }
	if [ "$added" -gt 0 ]; then
		# Give back what this run added, not a remembered total: another
		# process may have changed the reservation since.
		local now
		now=$(cat /proc/sys/vm/nr_hugepages)
		echo $((now > added ? now - added : 0)) >/proc/sys/vm/nr_hugepages
	fi
	for p in "${prefixes[@]}"; do rm -rf "/var/run/dpdk/$p"; done
	rmdir /var/run/dpdk 2>/dev/null
	if [ "${KEEP:-0}" = 1 ]; then echo "run.sh: logs kept in $work" >&2; else rm -rf "$work"; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the vdev pair ----------------------------------------------------------
# The target (testpmd or the relay) is the vhost-user backend and socket
# server (net_vhost, iface=SOCK), so that it starts first; Pktgen attaches
# a net_virtio_user port (path=SOCK) to each socket. Not the reverse: stock
# Pktgen 23.06 sets the MTU of every port and panics when the PMD refuses,
# which net_vhost does as net_memif does. The relay's sockets are the
# iface= of its [[port]] devices, in order; testpmd serves the same number
# of ports on sockets of its own.
relay_socks=()
if [[ " $TARGETS " == *" relay "* ]]; then
	while read -r dev; do
		[[ $dev == net_vhost* ]] || die "$CONFIG: port device $dev is not a net_vhost (vhost-user backend) port"
		s=$(sed -n 's/.*iface=\([^,]*\).*/\1/p' <<<"$dev")
		[ -n "$s" ] || die "$CONFIG: no iface= in $dev"
		relay_socks+=("$s")
	done < <(sed -n 's/^[[:space:]]*device[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$CONFIG")
	nports=${#relay_socks[@]}
	[ "$nports" -ge 1 ] || die "$CONFIG: no [[port]] device"
else
	nports=${NPORTS:-2}
fi
# testpmd's memory: as the relay's ([eal] no_huge), so that the two targets
# differ only in what they do with a frame.
target_huge=1
if [[ " $TARGETS " == *" relay "* ]] &&
	grep -Eq '^[[:space:]]*no_huge[[:space:]]*=[[:space:]]*true' "$CONFIG"; then
	target_huge=0
fi
pg_huge=1
[ "${PKTGEN_NO_HUGE:-0}" = 1 ] && pg_huge=0
[ "$nports" -le 2 ] || die "at most two ports (Pktgen sends on port 0, receives on the last)"
rxport=$((nports - 1))

# --- hugepages --------------------------------------------------------------
# Pktgen 23.06 creates five pools of 24,576 10-KiB mbufs per port (RX, TX,
# range, rate, sequence) plus the pcap pool: ~1.3 GB per port, whatever -m
# says. Only one target runs at a time.
need=$(((PKTGEN_MB * nports * pg_huge + TARGET_MB * target_huge) / 2))
free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
if [ "$free" -lt "$need" ]; then
	total=$(cat /proc/sys/vm/nr_hugepages)
	echo $((total + need - free)) >/proc/sys/vm/nr_hugepages
	added=$(($(cat /proc/sys/vm/nr_hugepages) - total))
	free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
	[ "$free" -ge "$need" ] || die "the kernel found only $free of $need free 2 MiB pages"
fi
if [ "$need" -gt 0 ]; then
	mkdir "$work/huge"
	mount -t hugetlbfs -o pagesize=2M nodev "$work/huge"
	mounted=$work/huge
	echo "hugepages: $need x 2 MiB needed, $added reserved by this run, hugetlbfs at $mounted"
fi
if [ "$target_huge" = 1 ]; then
	tp_mem=(--in-memory --huge-dir "$mounted")
else
	tp_mem=(--no-huge -m "$TARGET_MB")
fi
# Pktgen's virtio-user ports share its memory with the vhost-user end by
# file descriptor, at most 8 regions: one file per memseg list, not per page.
if [ "$pg_huge" = 1 ]; then
	pg_mem="--in-memory --single-file-segments --huge-dir $mounted"
else
	pg_mem="--no-huge -m $((1600 * nports))"
fi

# --- helpers ------------------------------------------------------------------
wait_sockets() { # wait until every socket given exists
	for s in "$@"; do
		for _ in $(seq 200); do [ -S "$s" ] && break; sleep 0.1; done
		[ -S "$s" ] || die "no vhost-user socket $s (see $work/*.log)"
	done
}

median() { sort -n | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print 0}'; }

# run_pktgen LOG SIZE SOCKET...: one Pktgen run replaying pool_data_SIZE.pcap
# on virtio-user ports attached to the sockets; writes Pktgen's summary
# (two lines) to LOG.summary. Pktgen runs in the background with its pid
# in $work/pktgen.pid, so that an interrupt reaches the trap at once and
# cleanup can stop it (Pktgen ignores SIGINT, and script(1) gives it a
# terminal of its own).
run_pktgen() {
	local log=$1 size=$2
	shift 2
	local vdevs="" i=0 m
	for s in "$@"; do
		vdevs+=" --vdev net_virtio_user$i,path=$s,queues=1,mac=${macs[$i]}"
		i=$((i + 1))
	done
	if [ $# -eq 1 ]; then m="1.0"; else m="1.[0-1]"; fi
	cat >"$work/pktgen.sh" <<-EOS
		#!/bin/sh
		echo \$\$ >$work/pktgen.pid
		cd $PKTGEN || exit 1
		exec ./build/app/pktgen --lcores $PKTGEN_LCORES --file-prefix ${prefix}_pg $pg_mem \\
		    --no-pci$vdevs -- -P -m '$m' -s 0:$here/pool_data_$size.pcap -f $here/pool.lua
	EOS
	chmod +x "$work/pktgen.sh"
	POOL_TX_PORT=0 POOL_RX_PORT=$rxport POOL_RATE=$RATE POOL_SECONDS=$DURATION \
		timeout $((DURATION + 60)) script -qefc "$work/pktgen.sh" /dev/null </dev/null >"$log" 2>&1 &
	local rc=0
	wait $! || rc=$?
	rm -f "$work/pktgen.pid"
	[ "$rc" = 0 ] || die "Pktgen failed (exit $rc), see $log (KEEP=1 keeps it)"
	tr -d '\r' <"$log" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' | grep -aE '^(tx_pps|rx_missed)=' >"$log.summary" ||
		die "no summary from Pktgen in $log"
}

# --- targets ----------------------------------------------------------------
target_pid=""
start_testpmd() {
	local vdevs=() i
	tp_socks=()
	for ((i = 0; i < nports; i++)); do
		tp_socks+=("$work/testpmd$i.sock")
		vdevs+=(--vdev "net_vhost$i,iface=$work/testpmd$i.sock,queues=1")
	done
	prefixes+=("${prefix}_tp")
	"$TESTPMD" -l "$TARGET_CORES" --file-prefix "${prefix}_tp" "${tp_mem[@]}" \
		--no-pci "${vdevs[@]}" -- --forward-mode=io --auto-start --stats-period 1 \
		--nb-cores=1 --total-num-mbufs=16384 >>"$work/testpmd.log" 2>&1 </dev/null &
	target_pid=$!
	pids+=("$target_pid")
	wait_sockets "${tp_socks[@]}"
}

# steady SAMPLES: the per-second samples (one a line) while Pktgen sent:
# from the first to the last above a tenth of the peak, less those two
# (partial seconds). The target's window includes Pktgen's warm-up seconds.
steady() {
	awk '{v[NR]=$1; if ($1>max) max=$1}
	END {for (i=1;i<=NR;i++) if (v[i]>max/10) {if (!f) f=i; l=i}
	     if (l-f>=2) {f++; l--}
	     if (f) for (i=f;i<=l;i++) print v[i]}'
}

# testpmd_pps LOG WHAT PORT: testpmd prints each port's Rx-pps and Tx-pps
# once a second (the log is opened for appending, so it is emptied before
# each size); the median of the steady samples of WHAT (Rx or Tx) on PORT.
testpmd_pps() {
	tr -d '\r' <"$1" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' |
		awk -v w="$2-pps:" -v p="$3" '/NIC statistics for port/ {port=$(NF-1)} $1==w && port==p {print $2}' |
		steady | median
}

start_relay() {
	local bin=${POOL_RELAY:-}
	if [ -z "$bin" ]; then
		(cd "$repo" && go build -o "$work/pool_relay" ./cmd/pool_relay) || die "building pool_relay"
		bin=$work/pool_relay
	fi
	relay_bin=$bin
	for s in "${relay_socks[@]}"; do
		[ -e "$s" ] && die "$s exists: is another relay running from $CONFIG?"
		mkdir -p "$(dirname "$s")"
	done
	local fp
	fp=$(sed -n 's/^[[:space:]]*file_prefix[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$CONFIG" | head -1)
	[ -n "$fp" ] && prefixes+=("$fp")
	"$bin" start --config "$CONFIG" >"$work/relay.log" 2>&1 </dev/null &
	target_pid=$!
	pids+=("$target_pid")
	wait_sockets "${relay_socks[@]}"
	for _ in $(seq 100); do "$bin" status --config "$CONFIG" >/dev/null 2>&1 && break; sleep 0.1; done
}

# relay_sampler OUT: once a second, the relay's frames received and sent on
# all ports (pool_relay stats --json), with a timestamp, until killed.
relay_sampler() {
	while :; do
		local c
		c=$("$relay_bin" stats --config "$CONFIG" --json 2>/dev/null |
			jq -r '"\([.ports[].rx_packets] | add) \([.ports[].tx_packets] | add)"') || c=""
		[ -n "$c" ] && echo "$(date +%s.%N) $c" >>"$1"
		sleep 1
	done
}

# relay_pps SAMPLES COLUMN: the relay's rate, per-interval deltas of the
# sampled counter (2 received, 3 sent), median of the steady intervals.
relay_pps() {
	awk -v c="$2" 'NR>1 && $1>t {print int(($c-n)/($1-t))} {t=$1; n=$c}' "$1" | steady | median
}

stop_target() {
	[ -n "$target_pid" ] || return 0
	kill -INT "$target_pid" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$target_pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$target_pid" 2>/dev/null || true
	wait "$target_pid" 2>/dev/null || true
	local keep=()
	for p in "${pids[@]}"; do [ "$p" != "$target_pid" ] && keep+=("$p"); done
	pids=("${keep[@]}")
	target_pid=""
}

# --- the run ----------------------------------------------------------------
results=$work/results
: >"$results"
echo "pktgen: $PKTGEN (version $(cat "$PKTGEN/VERSION" 2>/dev/null || echo unknown))"
echo "ports: $nports, sizes: $SIZES, $DURATION s per run at $RATE% rate, $ROUNDS round(s), load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "memory: Pktgen $pg_mem; testpmd ${tp_mem[*]}$([[ " $TARGETS " == *" relay "* ]] && echo "; relay from $CONFIG")"
for ((r = 1; r <= ROUNDS; r++)); do
	for t in $TARGETS; do
		case $t in
		testpmd)
			start_testpmd
			for size in $SIZES; do
				: >"$work/testpmd.log"
				run_pktgen "$work/pktgen-testpmd-$size-$r.log" "$size" "${tp_socks[@]}"
				out=$(cat "$work/pktgen-testpmd-$size-$r.log.summary")
				in=$(testpmd_pps "$work/testpmd.log" Rx 0)
				fwd=$(testpmd_pps "$work/testpmd.log" Tx "$rxport")
				line="pktgen: round=$r target=testpmd size=$size $(head -1 <<<"$out") target_rx_pps=$in target_fwd_pps=$fwd"
				echo "$line" | tee -a "$results"
				echo "        $(tail -1 <<<"$out")"
			done
			stop_target
			;;
		relay)
			start_relay
			for size in $SIZES; do
				: >"$work/relay-samples"
				relay_sampler "$work/relay-samples" &
				sampler=$!
				pids+=("$sampler")
				run_pktgen "$work/pktgen-relay-$size-$r.log" "$size" "${relay_socks[@]}"
				out=$(cat "$work/pktgen-relay-$size-$r.log.summary")
				kill "$sampler" 2>/dev/null || true
				wait "$sampler" 2>/dev/null || true
				in=$(relay_pps "$work/relay-samples" 2)
				fwd=$(relay_pps "$work/relay-samples" 3)
				line="pktgen: round=$r target=relay size=$size $(head -1 <<<"$out") target_rx_pps=$in target_fwd_pps=$fwd"
				echo "$line" | tee -a "$results"
				echo "        $(tail -1 <<<"$out")"
			done
			echo "pool_relay stats after round $r:"
			"$relay_bin" stats --config "$CONFIG" | sed 's/^/  /'
			stop_target
			;;
		esac
	done
done

# Medians over the rounds, testpmd and the relay side by side.
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p"; }
echo
printf '%-6s %-8s %12s %12s %14s %15s\n' size target tx_pps rx_pps target_rx_pps target_fwd_pps
for size in $SIZES; do
	for t in $TARGETS; do
		sel=$(grep " target=$t size=$size " "$results" || true)
		printf '%-6s %-8s %12s %12s %14s %15s\n' "$size" "$t" \
			"$(field tx_pps <<<"$sel" | median)" "$(field rx_pps <<<"$sel" | median)" \
			"$(field target_rx_pps <<<"$sel" | median)" "$(field target_fwd_pps <<<"$sel" | median)"
	done
	if [[ " $TARGETS " == *" testpmd "* && " $TARGETS " == *" relay "* ]]; then
		tp=$(grep " target=testpmd size=$size " "$results" | field rx_pps | median)
		rl=$(grep " target=relay size=$size " "$results" | field rx_pps | median)
		awk -v s="$size" -v a="$rl" -v b="$tp" 'BEGIN {printf "size=%s relay/testpmd rx_pps ratio=%.2f\n", s, (b>0 ? a/b : 0)}'
	fi
done
