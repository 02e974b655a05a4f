#!/usr/bin/env bash
# System calls and context switches per request, by program, while the matrix runs one of its
# wrk rows (bench/matrix): what each process of side A (server, its member) and side B (wrk,
# its member) does per request, for each pair in turn. A window of WINDOW seconds starts 3 s
# into the row. Context switches (voluntary and not) come from /proc/PID/task/*/status;
# system calls from `perf stat -e raw_syscalls:sys_enter` when perf is installed (the tracing
# slows every process a little: read the counts per request, not the rates). Requests in the
# window are the row's req/s times WINDOW.
#
# Usage: ZT1_BIN=... bench/switches.sh   (env: PAIRS="zt1 ztnc-self" METRIC='new connection -c32'
# WINDOW=5; bin/ztnc-run and bin/bench-matrix must be built: make build && go build -o
# bin/bench-matrix ./bench/matrix)
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${PAIRS:-zt1 ztnc-self}
METRIC=${METRIC:-new connection -c32}
WINDOW=${WINDOW:-5}

# switches PID: the context switches of all of PID's threads so far.
switches() {
	cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^(non)?voluntary_ctxt_switches/ {n += $2} END {print n + 0}'
}

# netns PROG: the network namespace of the first process named PROG.
netns() { readlink "/proc/$(pgrep -x "$1" | head -1)/ns/net"; }

work=$(mktemp -d /tmp/ztnc-bench-switches.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, kernel $(uname -r), row \"$METRIC\", window ${WINDOW} s"
printf '%-10s %-4s %-14s %12s %14s\n' pair side program syscalls/req switches/req
for pair in $PAIRS; do
	bin/bench-matrix -v -pairs "$pair" -metrics "$METRIC" -runs 1 -duration $((WINDOW + 6))s \
		-startup-runs 1 >"$work/out" 2>"$work/log" &
	bm=$!
	until pgrep -x wrk >/dev/null; do
		kill -0 $bm 2>/dev/null || { cat "$work/log" >&2; exit 1; }
		sleep 0.02
	done
	sleep 3
	nsa=$(netns nginx) nsb=$(netns wrk)
	: >"$work/pids"
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		ns=$(readlink "/proc/$p/ns/net" 2>/dev/null) || continue
		side=
		[ "$ns" = "$nsa" ] && side=A
		[ "$ns" = "$nsb" ] && side=B
		[ -n "$side" ] && echo "$p $side $(cat "/proc/$p/comm") $(switches "$p")" >>"$work/pids"
	done
	while read -r p _ _ _; do
		if command -v perf >/dev/null; then
			perf stat -e raw_syscalls:sys_enter -p "$p" -x, -o "$work/$p.perf" -- sleep "$WINDOW" 2>/dev/null &
		fi
	done <"$work/pids"
	sleep "$WINDOW"
	while read -r p side comm before; do
		echo "$p $side $comm $(($(switches "$p") - before))"
	done <"$work/pids" >"$work/switches"
	wait $bm
	rate=$(awk -F'|' '$2 ~ /req\/s/ || $3 ~ /req\/s/ {gsub(/ /, "", $4); print $4; exit}' "$work/out")
	reqs=$(awk -v r="$rate" -v w="$WINDOW" 'BEGIN {print r * w}')
	# One line per program and side: processes of one name (nginx's workers) summed.
	while read -r p side comm sw; do
		sc=$(cut -d, -f1 "$work/$p.perf" 2>/dev/null | grep -E '^[0-9]+$' || echo 0)
		echo "$side $comm $sc $sw"
	done <"$work/switches" | awk -v pair="$pair" -v reqs="$reqs" '
		{k = $1 " " $2; sc[k] += $3; sw[k] += $4}
		END {for (k in sc) {split(k, f, " "); printf "%-10s %-4s %-14s %12.1f %14.2f\n", pair, f[1], f[2], sc[k] / reqs, sw[k] / reqs}}' | sort -k2,2 -k3,3
	echo "$pair: $rate req/s over the whole row"
done
