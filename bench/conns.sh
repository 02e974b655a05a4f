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
#           connection per request (Connection: close) with -c1 and -c32, keep-alive -c32
#   host:   tcpprog pairs from under `ztnc-run --local` to a tcpprog server on the host's
#           loopback (fall-through): pairs/s, median µs
#
# Usage: BASE=main bench/conns.sh   (env: ROUNDS=5 PAIRS=3000 CALLS=100000 WRK_SECONDS=4
# BASE_BIN=path/to/ztnc-run instead of building BASE; ONLY="pairs calls nginx host")
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
BASE=${BASE:-main}
PAIRS=${PAIRS:-3000}
CALLS=${CALLS:-100000}
WRK_SECONDS=${WRK_SECONDS:-4}
ONLY=${ONLY:-pairs calls nginx host}

work=$(mktemp -d /tmp/ztnc-bench-conns.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/after" ./cmd/ztnc-run
if [ -n "${BASE_BIN:-}" ]; then
	cp "$BASE_BIN" "$work/before"
else
	mkdir "$work/src"
	git archive "$BASE" | tar -x -C "$work/src"
	(cd "$work/src" && go build -o "$work/before" ./cmd/ztnc-run)
fi
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

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
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
		kill $!' "$prog" "$2" "$3"
	awk -v n="$3" '{printf "cpu_us_per_op %.1f\n", ($1 + $2) * 1e6 / n}' "$t"
}

# nginx_wrk BIN: three wrk runs against nginx, both under one ztnc-run --local.
nginx_wrk() {
	"$1" --local 10.9.0.1/24 -- sh -c '
		nginx -c "$0/nginx.conf" -g "daemon off;" &
		until wrk -t1 -c1 -d1s http://10.9.0.1:8080/ >/dev/null 2>&1; do sleep 0.1; done
		wrk -t1 -c1 -d1s -H "Connection: close" http://10.9.0.1:8080/ | grep -q "Non-2xx" && echo "nginx: errors" >&2
		echo close1 $(wrk -t1 -c1 -d"$1"s -H "Connection: close" http://10.9.0.1:8080/ | awk "/Requests\/sec/ {print \$2}")
		echo close32 $(wrk -t2 -c32 -d"$1"s -H "Connection: close" http://10.9.0.1:8080/ | awk "/Requests\/sec/ {print \$2}")
		echo keepalive32 $(wrk -t2 -c32 -d"$1"s http://10.9.0.1:8080/ | awk "/Requests\/sec/ {print \$2}")
		kill $!' "$work/www" "$WRK_SECONDS"
}

host_pairs() { "$1" --local 10.9.0.1/24 -- "$prog" pairs "127.0.0.1:$port" "$PAIRS"; }

field() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i+1)}'; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
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
		fi
		if want calls; then
			l=$(local_prog "$bin" calls "$CALLS")
			res[$side.calls.us]+="$(field median_us <<<"$l") "
		fi
		if want nginx; then
			l=$(nginx_wrk "$bin")
			for k in close1 close32 keepalive32; do
				res[$side.$k]+="$(awk -v k=$k '$1 == k {print $2}' <<<"$l") "
			done
		fi
		if want host; then
			l=$(host_pairs "$bin")
			res[$side.host.ps]+="$(field per_second <<<"$l") "
			res[$side.host.us]+="$(field median_us <<<"$l") "
		fi
	done
done

med() { tr ' ' '\n' <<<"${res[$1]:-}" | { grep . || true; } | median; }
row() {
	local b a
	b=$(med "before.$2") a=$(med "after.$2")
	[ -n "$b" ] && [ -n "$a" ] || return 0
	echo "| $1 | $b | $a | $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", a / b}') |"
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r), median of $ROUNDS rounds, before = ${BASE_BIN:-$BASE}, after = $(git describe --always --dirty)"
echo
echo "| under ztnc-run --local | before | after | after / before |"
echo "|---|---|---|---|"
row "Go connect+accept pairs per second" pairs.ps
row "Go connect+accept pair, median µs" pairs.us
row "CPU per pair (ztnc-run + programs), µs" pairs.cpu
row "trapped call round trip (getsockname), median µs" calls.us
row "nginx new connection per request, wrk -c1, req/s" close1
row "nginx new connection per request, wrk -c32, req/s" close32
row "nginx keep-alive, wrk -c32, req/s" keepalive32
row "Go pairs to a host server (fall-through) per second" host.ps
row "Go pair to a host server (fall-through), median µs" host.us
