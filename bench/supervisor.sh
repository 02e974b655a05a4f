#!/usr/bin/env bash
# Supervisor benchmarks. Each measurement runs the same statically linked Go program
# (tests/testdata/tcpprog) twice in the same run: on host loopback, and under
# `ztnc-run --local` between two processes of one virtual network; it prints both and their
# ratio. Rounds alternate host and ztnc so that background load hits both alike; the median
# of the rounds is reported.
#
#   calls: one emulated socket call (getsockname on a connected socket) — the trapped-call
#          round trip, median µs
#   pairs: connect + accept + close, sequentially — pairs/s and median µs per pair
#   bulk:  one TCP stream, server → client, sha256-checked — Gbit/s
#
# Usage: bench/supervisor.sh   (env: ROUNDS=3 CALLS=100000 PAIRS=3000 BYTES=2147483648)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
CALLS=${CALLS:-100000}
PAIRS=${PAIRS:-3000}
BYTES=${BYTES:-2147483648}

. bench/lib.sh
build tcpprog
prog=$PWD/$out/tcpprog

# host CMD ARGS: run one tcpprog client mode against a tcpprog server on host loopback.
host() {
	local port pid
	port=$(free_port)
	"$prog" serve "127.0.0.1:$port" >/dev/null 2>&1 &
	pid=$!
	until "$prog" echo "127.0.0.1:$port" up >/dev/null 2>&1; do sleep 0.05; done
	"$prog" "$1" "127.0.0.1:$port" "$2"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
}

# ztnc CMD ARGS: the same, server and client both under one ztnc-run --local.
ztnc() {
	"$out/ztnc-run" --local 198.51.100.1/24 -- sh -c '
		"$0" serve 198.51.100.1:7000 >/dev/null 2>&1 &
		until "$0" echo 198.51.100.1:7000 up >/dev/null 2>&1; do sleep 0.05; done
		"$0" "$1" 198.51.100.1:7000 "$2"
		kill $!' "$prog" "$1" "$2"
}

declare -A res
for ((r = 1; r <= ROUNDS; r++)); do
	for side in host ztnc; do
		l=$($side calls "$CALLS")
		res[$side.calls.us]+="$(field median_us <<<"$l") "
		l=$($side pairs "$PAIRS")
		res[$side.pairs.ps]+="$(field per_second <<<"$l") "
		res[$side.pairs.us]+="$(field median_us <<<"$l") "
		l=$($side bulk "$BYTES")
		res[$side.bulk.gbit]+="$(field gbit/s <<<"$l") "
	done
done

run_header
echo
echo "| measurement | host loopback | ztnc-run --local | ztnc / host |"
echo "|---|---|---|---|"
h=$(med host.calls.us) z=$(med ztnc.calls.us)
echo "| socket call round trip (getsockname), median µs | $h | $z | $(ratio "$z" "$h") |"
h=$(med host.pairs.ps) z=$(med ztnc.pairs.ps)
echo "| connect+accept pairs per second | $h | $z | $(ratio "$z" "$h") |"
h=$(med host.pairs.us) z=$(med ztnc.pairs.us)
echo "| connect+accept pair, median µs | $h | $z | $(ratio "$z" "$h") |"
h=$(med host.bulk.gbit) z=$(med ztnc.bulk.gbit)
echo "| bulk TCP, one stream, Gbit/s | $h | $z | $(ratio "$z" "$h") |"
