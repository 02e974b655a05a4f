#!/usr/bin/env bash
# Fall-through benchmarks: a program under ztnc-run talking to a server on the host's
# loopback (a host destination), against the same program run plainly, in the same run.
# The server (tests/testdata/tcpprog, static Go) always runs plainly on the host; the client
# is the same binary, once on the host and once under `ztnc-run --local` (its socket becomes
# a host socket at connect). Rounds alternate plain and ztnc so that background load hits
# both alike; the median of the rounds is reported.
#
#   pairs: connect + request + close to the host server, sequentially — pairs/s, median µs
#          (each connect under ztnc-run pays the trapped socket() and connect() and the swap)
#   bulk:  one TCP stream from the host server, sha256-checked — Gbit/s (no trap after the
#          swap: this should be the host's own figure)
#
# Usage: bench/fallthrough.sh   (env: ROUNDS=5 PAIRS=3000 BYTES=2147483648)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
PAIRS=${PAIRS:-3000}
BYTES=${BYTES:-2147483648}

. bench/lib.sh
build tcpprog
prog=$PWD/$out/tcpprog

port=$(free_port)
"$prog" serve "127.0.0.1:$port" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
until "$prog" echo "127.0.0.1:$port" up >/dev/null 2>&1; do sleep 0.05; done

plain() { "$prog" "$1" "127.0.0.1:$port" "$2"; }
ztnc() { "$out/ztnc-run" --local 198.51.100.1/24 -- "$prog" "$1" "127.0.0.1:$port" "$2"; }

declare -A res
for ((r = 1; r <= ROUNDS; r++)); do
	for side in plain ztnc; do
		l=$($side pairs "$PAIRS")
		res[$side.pairs.ps]+="$(field per_second <<<"$l") "
		res[$side.pairs.us]+="$(field median_us <<<"$l") "
		l=$($side bulk "$BYTES")
		res[$side.bulk.gbit]+="$(field gbit/s <<<"$l") "
	done
done

run_header
echo
echo "| client → server on the host's loopback | plain | under ztnc-run (fall-through) | ztnc / plain |"
echo "|---|---|---|---|"
p=$(med plain.pairs.ps) z=$(med ztnc.pairs.ps)
echo "| connect+request+close per second | $p | $z | $(ratio "$z" "$p") |"
p=$(med plain.pairs.us) z=$(med ztnc.pairs.us)
echo "| connect+request+close, median µs | $p | $z | $(ratio "$z" "$p") |"
p=$(med plain.bulk.gbit) z=$(med ztnc.bulk.gbit)
echo "| one stream, Gbit/s | $p | $z | $(ratio "$z" "$p") |"
