#!/usr/bin/env bash
# UDP benchmarks and the TCP no-regression check of issue 5, all in one run.
#
#  1. TCP data path, before and after: the same programs under the ztnc-run built from BASE
#     (default: the main commit UDP support started from) and under this tree's, rounds
#     alternating so that background load hits both alike:
#       bulk:  one TCP stream, server → client (tests/testdata/tcpprog bulk), Gbit/s
#       nginx: wrk against nginx (keep-alive, 50 connections, a small static file), req/s
#  2. UDP datagrams per second between two sockets of one program (tests/testdata/udpprog rate,
#     64-byte datagrams, at most 64 in flight) on host loopback and under ztnc-run --local:
#       connected:   write / read (native calls on the socketpair: nothing trapped)
#       unconnected: sendto / recvfrom with addresses (two trapped calls per datagram)
#
# Medians of ROUNDS rounds. Usage: bench/udp.sh   (env: ROUNDS=3 BASE=62eeb14 BYTES=1073741824
# WRK_SECONDS=5 DGRAMS=100000)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
BASE=${BASE:-62eeb14}
BYTES=${BYTES:-1073741824}
WRK_SECONDS=${WRK_SECONDS:-5}
DGRAMS=${DGRAMS:-100000}

. bench/lib.sh
build tcpprog udpprog
before=$(mktemp -d)
trap 'rm -rf "$before"' EXIT
git archive "$BASE" | tar -x -C "$before"
(cd "$before" && go build -o ztnc-run ./cmd/ztnc-run)
tcpprog=$PWD/$out/tcpprog udpprog=$PWD/$out/udpprog

www=$(mktemp -d)
trap 'rm -rf "$before" "$www"' EXIT
head -c 612 /dev/zero | tr '\0' x >"$www/index.html"
cat >"$www/nginx.conf" <<CONF
worker_processes 1;
error_log stderr error;
pid $www/nginx.pid;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $www; proxy_temp_path $www; fastcgi_temp_path $www; uwsgi_temp_path $www; scgi_temp_path $www;
	keepalive_requests 1000000;
	server { listen 198.51.100.1:8080; root $www; }
}
CONF

# bulk ZTNC: one 1 GiB TCP stream under the given ztnc-run.
bulk() {
	"$1" --local 198.51.100.1/24 -- sh -c '
		"$0" serve 198.51.100.1:7000 >/dev/null 2>&1 &
		until "$0" echo 198.51.100.1:7000 up >/dev/null 2>&1; do sleep 0.05; done
		"$0" bulk 198.51.100.1:7000 "$1"
		kill $!' "$tcpprog" "$BYTES"
}

# nginx ZTNC: wrk against nginx, both under the given ztnc-run.
nginx_wrk() {
	"$1" --local 198.51.100.1/24 -- sh -c '
		nginx -c "$0/nginx.conf" -g "daemon off;" &
		until wrk -t1 -c1 -d1s http://198.51.100.1:8080/ >/dev/null 2>&1; do sleep 0.1; done
		wrk -t2 -c50 -d"$1"s http://198.51.100.1:8080/
		kill $!' "$www" "$WRK_SECONDS"
}

declare -A res
for ((r = 1; r <= ROUNDS; r++)); do
	for side in before after; do
		bin=$PWD/$out/ztnc-run
		[ $side = before ] && bin=$before/ztnc-run
		res[$side.bulk]+="$(bulk "$bin" | field gbit/s) "
		res[$side.nginx]+="$(nginx_wrk "$bin" | awk '/Requests\/sec/ {print $2}') "
	done
	for mode in connected unconnected; do
		res[host.$mode]+="$("$udpprog" rate 127.0.0.1:0 "$DGRAMS" $mode | field per_second) "
		res[ztnc.$mode]+="$("$out/ztnc-run" --local 198.51.100.1/24 -- "$udpprog" rate 198.51.100.1:0 "$DGRAMS" $mode | field per_second) "
	done
done

run_header ", before = $BASE"
echo
echo "| TCP under ztnc-run --local | before UDP support | after | after / before |"
echo "|---|---|---|---|"
b=$(med before.bulk) a=$(med after.bulk)
echo "| bulk TCP, one stream, Gbit/s | $b | $a | $(ratio "$a" "$b") |"
b=$(med before.nginx) a=$(med after.nginx)
echo "| nginx keep-alive (wrk -t2 -c50), req/s | $b | $a | $(ratio "$a" "$b") |"
echo
echo "| UDP, 64-byte datagrams | host loopback | ztnc-run --local | ztnc / host |"
echo "|---|---|---|---|"
for mode in connected unconnected; do
	h=$(med host.$mode) z=$(med ztnc.$mode)
	echo "| $mode, datagrams/s | $h | $z | $(ratio "$z" "$h") |"
done
