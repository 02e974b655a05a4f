#!/usr/bin/env bash
# ztnc-run's own CPU while a program's threads block in trapped calls: N Python threads in
# a blocking accept() under `ztnc-run --local`, which checks each blocked thread for pending
# signals (every 20 ms). CPU of the ztnc-run process over a window, from /proc/PID/stat (10 ms
# resolution), the ztnc-run built from BASE and this tree's alternated round by round.
#
# Usage: BASE=main bench/blocked.sh   (env: ROUNDS=3 THREADS="1 5 100" WINDOW=10
# BASE_BIN=path/to/ztnc-run instead of building BASE, AFTER_BIN instead of building this tree)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
BASE=${BASE:-main}
THREADS=${THREADS:-1 5 100}
WINDOW=${WINDOW:-10}

. bench/lib.sh # build_sides, med, ratio, run_header

work=$(mktemp -d /tmp/ztnc-bench-blocked.XXXXXX)
trap 'rm -rf "$work"' EXIT
build_sides "$work"
cat >"$work/blockers.py" <<'PY'
import socket, sys, threading, time
s = socket.socket()
s.bind(("0.0.0.0", 8099))
s.listen(16)
for _ in range(int(sys.argv[1])):
    threading.Thread(target=s.accept, daemon=True).start()
time.sleep(float(sys.argv[2]))
PY

# cpu_ms BIN N: ms of CPU ztnc-run used over WINDOW seconds while N threads block.
cpu_ms() {
	"$1" --local 10.9.0.1/24 -- python3 "$work/blockers.py" "$2" $((WINDOW + 5)) >/dev/null 2>&1 &
	local pid=$! a b
	sleep 3
	a=$(awk '{print $14 + $15}' "/proc/$pid/stat")
	sleep "$WINDOW"
	b=$(awk '{print $14 + $15}' "/proc/$pid/stat")
	wait "$pid" || true
	echo $(((b - a) * 1000 / $(getconf CLK_TCK)))
}

declare -A res
for _ in $(seq "$ROUNDS"); do
	for n in $THREADS; do
		for side in before after; do
			res[$side.$n]+=" $(cpu_ms "$work/$side" "$n")"
		done
	done
done
run_header ", ${WINDOW} s windows; before = $BASE"
printf '%-18s %12s %12s %8s\n' "threads blocked" "before ms" "after ms" "ratio"
for n in $THREADS; do
	b=$(med "before.$n") a=$(med "after.$n")
	printf '%-18s %12s %12s %8s\n' "$n" "$b" "$a" "$( ((b > 0)) && ratio "$a" "$b" || echo -)"
done
