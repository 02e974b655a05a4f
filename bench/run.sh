#!/usr/bin/env bash
# The benchmark suite worth running (make bench): component benchmarks, then the side-by-side
# matrix (bench/matrix: plain veth, zerotier-one TAP when ZT1_BIN is set, ztnc-run members)
# with CPU time per unit of work. Results are printed and written to OUT (a markdown file);
# docs/benchmarks.md shows a run and how to read it.
#
# Usage: bench/run.sh   (env: OUT=bench/out/results.md RUNS=3 DURATION=10s BASE=<git rev>
#                         MATRIX_FLAGS=... SKIP_COMPONENTS=1 SKIP_MATRIX=1)
# BASE builds the ztnc-run of another revision (e.g. main, or a commit before a change) into
# bench/out/ztnc-run-<rev> and measures it as pair ztnc-self-base, interleaved with this tree's
# ztnc-self (-ztnc-base). ZT1_BIN adds the zerotier-one pairs. Needs root for the matrix
# (network namespaces). Everything runs under nice: other jobs on the machine make absolute
# numbers noisy, which is why the matrix alternates pairs and reports CPU time per GB /
# 1k requests / 1M datagrams next to each rate.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/out/results.md}
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
mkdir -p bench/out "$(dirname "$OUT")"
: >"$OUT"

section() { printf '\n## %s\n\n```\n' "$1" | tee -a "$OUT"; }
endsection() { printf '```\n' | tee -a "$OUT"; }

if [ -z "${SKIP_COMPONENTS:-}" ]; then
	# Component benchmarks: each a fixed amount of work, CPU time per unit reported beside
	# the rate (the cpu-* metrics).
	section "Components (go test -bench), $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
	nice go test -run '^$' -bench 'Frames' -benchtime 100000x ./zt/ 2>&1 | grep -E '^(Benchmark|ok|FAIL)' | tee -a "$OUT"
	nice go test -run '^$' -bench 'Armor$|ArmorDearmor' -benchmem ./zt/wire/ 2>&1 | grep -E '^(Benchmark|ok|FAIL)' | tee -a "$OUT"
	nice go test -run '^$' -bench 'SpliceThroughput/(reno|burst)$' -benchtime 4000x ./netstack/ 2>&1 | grep -E '^(Benchmark|ok|FAIL)' | tee -a "$OUT"
	nice go test -run '^$' -bench 'Connect$|UDPSplice|Frame$' ./netstack/ 2>&1 | grep -E '^(Benchmark|ok|FAIL)' | tee -a "$OUT"
	nice go test -run '^$' -bench 'RoundTrip|Syscall' ./notify/ 2>&1 | grep -E '^(Benchmark|ok|FAIL)' | tee -a "$OUT"
	endsection
fi

if [ -z "${SKIP_MATRIX:-}" ]; then
	nice go build -o bin/ztnc-run ./cmd/ztnc-run
	nice go build -o bin/bench-matrix ./bench/matrix
	flags=(-runs "$RUNS" -duration "$DURATION")
	if [ -n "${BASE:-}" ]; then
		rev=$(git rev-parse --short "$BASE^{commit}")
		src=$(mktemp -d)
		trap 'rm -rf "$src"' EXIT
		git archive "$rev" | tar -x -C "$src"
		(cd "$src" && nice go build -o ztnc-run ./cmd/ztnc-run)
		mv "$src/ztnc-run" "bench/out/ztnc-run-$rev"
		flags+=(-ztnc-base "bench/out/ztnc-run-$rev")
	fi
	# shellcheck disable=SC2206
	flags+=(${MATRIX_FLAGS:-})
	printf '\n' >>"$OUT"
	nice bin/bench-matrix "${flags[@]}" | tee -a "$OUT"
fi
echo "results in $OUT" >&2
