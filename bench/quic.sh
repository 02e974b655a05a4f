#!/usr/bin/env bash
# HTTP/3 (quic-go, bench/quic) under ztnc-run: seconds per 20 MB download between a server
# and a client under one `ztnc-run --local`, the ztnc-run built from BASE and this tree's
# alternated round by round, and the same programs natively on the host's loopback (with
# quic-go's UDP segmentation on, and off) for scale. quic-go sends every packet with sendmsg
# on an unconnected socket, so this is the path of ztnc-run's trapped datagram calls.
#
# Usage: BASE=main bench/quic.sh   (env: ROUNDS=3 DOWNLOADS=3 BASE_BIN, AFTER_BIN as in
# bench/lib.sh; bench/quic is a module of its own: building it fetches quic-go)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
BASE=${BASE:-main}
DOWNLOADS=${DOWNLOADS:-3}

. bench/lib.sh # build_sides, med, ratio, run_header

work=$(mktemp -d /tmp/ztnc-bench-quic.XXXXXX)
trap 'rm -rf "$work"' EXIT
build_sides "$work"
(cd bench/quic && CGO_ENABLED=0 go build -o "$work/quic" .)

# seconds [ZTNC-RUN]: the median seconds per download of one client run, under ztnc-run when
# given, else natively.
seconds() {
	local addr=127.0.0.1:4433 run=()
	if [ -n "${1:-}" ]; then
		addr=198.51.100.1:4433 run=("$1" --local 198.51.100.1/24 --)
	fi
	"${run[@]}" sh -c "'$work/quic' server $addr & s=\$!; sleep 1; '$work/quic' client $addr $DOWNLOADS; kill \$s" 2>/dev/null |
		awk '/^download/ {print $3}' | sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "failed"}'
}

declare -A res
for _ in $(seq "$ROUNDS"); do
	res[native]+=" $(seconds)"
	res[native-nogso]+=" $(QUIC_GO_DISABLE_GSO=true seconds)"
	for side in before after; do
		res[$side]+=" $(seconds "$work/$side")"
	done
done
run_header ", $DOWNLOADS downloads of 20 MB per round; before = $BASE"
printf '%-34s %10s\n' "seconds per 20 MB download" "median"
printf '%-34s %10s\n' "native (loopback)" "$(med native)" "native, quic-go's GSO off" "$(med native-nogso)" \
	"ztnc-run before" "$(med before)" "ztnc-run after" "$(med after)"
echo "after/before: $(ratio "$(med after)" "$(med before)"), after/native without GSO: $(ratio "$(med after)" "$(med native-nogso)")"
