#!/usr/bin/env bash
# Connection-rate benchmarks of the supervisor, before and after a change, in one run: the
# same programs under the ztnc-run built from BASE and under this tree's, rounds alternating
# so that background load hits both alike; medians of ROUNDS rounds, and after/before ratios.
#
#   pairs:  tcpprog pairs — sequential Go net.Dial + Accept + one line + close, client and
#           server under one `ztnc-run --local`: pairs/s, median µs per pair, and CPU µs per
#           pair (user+system of ztnc-run and its programs, from wait4's rusage)
#   calls:  tcpprog calls — getsockname on a connected socket, the trapped-call round trip,
#           median µs
#   nginx:  wrk against nginx (1 worker, a 612-byte file) under one `ztnc-run --local`: new
#           connection per request (Connection: close) with -c1 and -c32, keep-alive -c32;
#           req/s, and CPU µs per request (ztnc-run, nginx and wrk)
#   host:   tcpprog pairs from under `ztnc-run --local` to a tcpprog server on the host's
#           loopback (fall-through): pairs/s, median µs
#
# Usage: BASE=main bench/conns.sh   (env: ROUNDS=5 PAIRS=3000 CALLS=100000 WRK_SECONDS=4
# BASE_BIN=path/to/ztnc-run instead of building BASE, AFTER_BIN instead of building this tree;
# ONLY="pairs calls nginx host")
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
BASE=${BASE:-main}
PAIRS=${PAIRS:-3000}
CALLS=${CALLS:-100000}
WRK_SECONDS=${WRK_SECONDS:-4}
ONLY=${ONLY:-pairs calls nginx host}

. bench/lib.sh # build_sides, field, med, ratio, run_header, free_port

work=$(mktemp -d /tmp/ztnc-bench-conns.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

build_sides "$work"
CGO_ENABLED=0 go build -o "$work/tcpprog" ./tests/testdata/tcpprog
prog=$work/tcpprog

mkdir "$work/www"
chmod 755 "$work" "$work/www" # nginx's worker runs as nobody
head -c 612 /dev/zero | tr '\0' x >"$work/www/index.html"
cat >"$work/www/nginx.conf" <<CONF
worker_processes 1;
error_log stderr error;
pid $work/www/nginx.pid;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $work/www; proxy_temp_path $work/www; fastcgi_temp_path $work/www; uwsgi_temp_path $work/www; scgi_temp_path $work/www;
	keepalive_requests 1000000;
	server { listen 10.9.0.1:8080; root $work/www; }
}
CONF

port=$(free_port)
"$prog" serve "127.0.0.1:$port" >/dev/null 2>&1 &
pids+=($!)
until "$prog" echo "127.0.0.1:$port" up >/dev/null 2>&1; do sleep 0.05; done

# local BIN MODE N: tcpprog MODE against a tcpprog server, both under one ztnc-run --local;
# prints the client's line and "cpu_us_per_op X" for the whole ztnc-run.
local_prog() {
	local t=$work/time
	/usr/bin/time -o "$t" -f "%U %S" "$1" --local 10.9.0.1/24 -- sh -c '
		"$0" serve 10.9.0.1:7000 >/dev/null 2>&1 &
		until "$0" echo 10.9.0.1:7000 up >/dev/null 2>&1; do sleep 0.05; done
		"$0" "$1" 10.9.0.1:7000 "$2"
		echo ztnc_ticks $(cut -d" " -f14,15 /proc/$PPID/stat)
		kill $!' "$prog" "$2" "$3" >"$t.out"
	grep -v ztnc_ticks "$t.out"
	awk -v n="$3" '{printf "cpu_us_per_op %.1f\n", ($1 + $2) * 1e6 / n}' "$t"
	awk -v n="$3" -v hz="$(getconf CLK_TCK)" '$1 == "ztnc_ticks" {printf "ztnc_us_per_op %.1f\n", ($2 + $3) * 1e6 / hz / n}' "$t.out"
}

# nginx_wrk BIN CONNS [HEADER]: wrk against nginx, both under one ztnc-run --local; prints
# "rps X cpu_us_per_req Y" (CPU of ztnc-run, nginx and wrk over all requests).
nginx_wrk() {
	local t=$work/time
	/usr/bin/time -o "$t" -f "%U %S" "$1" --local 10.9.0.1/24 -- sh -c '
		nginx -c "$0/nginx.conf" -g "daemon off;" &
		until curl -so /dev/null http://10.9.0.1:8080/; do sleep 0.05; done
		wrk -t$(($2 > 1 ? 2 : 1)) -c"$2" -d"$1"s ${3:+-H "$3"} http://10.9.0.1:8080/ >"$0/wrk.out"
		echo $(cut -d" " -f14,15 /proc/$PPID/stat) >"$0/ticks"
		kill $!' "$work/www" "$WRK_SECONDS" "$2" "${3:-}" >/dev/null
	grep -q "Non-2xx" "$work/www/wrk.out" && echo "nginx: errors" >&2
	awk '/requests in/ {n = $1} /Requests\/sec/ {r = $2} END {print "rps", r, "requests", n}' "$work/www/wrk.out" |
		awk -v t="$(cat "$t")" -v z="$(cat "$work/www/ticks")" -v hz="$(getconf CLK_TCK)" '{
			split(t, c, " "); split(z, k, " ")
			printf "rps %s cpu_us_per_req %.1f ztnc_us_per_req %.1f\n", $2, (c[1] + c[2]) * 1e6 / $4, (k[1] + k[2]) * 1e6 / hz / $4
		}'
}

host_pairs() { "$1" --local 10.9.0.1/24 -- "$prog" pairs "127.0.0.1:$port" "$PAIRS"; }

want() { [[ " $ONLY " == *" $1 "* ]]; }

declare -A res
for ((r = 1; r <= ROUNDS; r++)); do
	for side in before after; do
		bin=$work/$side
		if want pairs; then
			l=$(local_prog "$bin" pairs "$PAIRS")
			res[$side.pairs.ps]+="$(field per_second <<<"$l") "
			res[$side.pairs.us]+="$(field median_us <<<"$l") "
			res[$side.pairs.cpu]+="$(field cpu_us_per_op <<<"$l") "
			res[$side.pairs.zcpu]+="$(field ztnc_us_per_op <<<"$l") "
		fi
		if want calls; then
			l=$(local_prog "$bin" calls "$CALLS")
			res[$side.calls.us]+="$(field median_us <<<"$l") "
		fi
		if want nginx; then
			for k in close1 close32 keepalive32; do
				case $k in
				close1) l=$(nginx_wrk "$bin" 1 "Connection: close") ;;
				close32) l=$(nginx_wrk "$bin" 32 "Connection: close") ;;
				keepalive32) l=$(nginx_wrk "$bin" 32) ;;
				esac
				res[$side.$k]+="$(field rps <<<"$l") "
				res[$side.$k.cpu]+="$(field cpu_us_per_req <<<"$l") "
				res[$side.$k.zcpu]+="$(field ztnc_us_per_req <<<"$l") "
			done
		fi
		if want host; then
			l=$(host_pairs "$bin")
			res[$side.host.ps]+="$(field per_second <<<"$l") "
			res[$side.host.us]+="$(field median_us <<<"$l") "
		fi
	done
done

# row TITLE METRIC: medians before and after, and their ratio (nothing when not measured).
row() {
	[[ "${res[before.$2]:-}" =~ [0-9] && "${res[after.$2]:-}" =~ [0-9] ]] || return 0
	local b a
	b=$(med "before.$2") a=$(med "after.$2")
	echo "| $1 | $b | $a | $(ratio "$a" "$b") |"
}

run_header ", before = ${BASE_BIN:-$BASE}, after = ${AFTER_BIN:-$(git describe --always --dirty)}"
echo
echo "| under ztnc-run --local | before | after | after / before |"
echo "|---|---|---|---|"
row "Go connect+accept pairs per second" pairs.ps
row "Go connect+accept pair, median µs" pairs.us
row "CPU per pair (ztnc-run + programs), µs" pairs.cpu
row "CPU per pair (ztnc-run alone), µs" pairs.zcpu
row "trapped call round trip (getsockname), median µs" calls.us
row "nginx new connection per request, wrk -c1, req/s" close1
row "nginx new connection per request, wrk -c1, CPU µs per request" close1.cpu
row "  of which ztnc-run" close1.zcpu
row "nginx new connection per request, wrk -c32, req/s" close32
row "nginx new connection per request, wrk -c32, CPU µs per request" close32.cpu
row "  of which ztnc-run" close32.zcpu
row "nginx keep-alive, wrk -c32, req/s" keepalive32
row "nginx keep-alive, wrk -c32, CPU µs per request" keepalive32.cpu
row "  of which ztnc-run" keepalive32.zcpu
row "Go pairs to a host server (fall-through) per second" host.ps
row "Go pair to a host server (fall-through), median µs" host.us
