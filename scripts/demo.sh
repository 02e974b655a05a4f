#!/usr/bin/env bash
# The offline demo (make demo): a web server and a client, both under one ztnc-run, talk over
# a private virtual network that exists only inside that ztnc-run; meanwhile the host shows no
# such interface and no such listening port.
set -euo pipefail
cd "$(dirname "$0")/.."
ZTNC=${ZTNC:-bin/ztnc-run}
PORT=8080
ADDR=10.9.0.1

work=$(mktemp -d "${TMPDIR:-/tmp}/ztnc-demo.XXXXXX")
trap 'touch "$work/done"; wait 2>/dev/null || true; rm -rf "$work"' EXIT
echo "Hello from a program on the virtual network $ADDR/24." >"$work/index.html"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "ztnc-run --local $ADDR/24 -- sh -c 'python3 -m http.server $PORT & curl ...'"
"$ZTNC" --local "$ADDR/24" -- sh -c '
	set -e
	cd "$1"
	python3 -m http.server '"$PORT"' --bind '"$ADDR"' >server.log 2>&1 &
	server=$!
	i=0; until curl -sf -o /dev/null http://'"$ADDR"':'"$PORT"'/; do
		i=$((i+1)); [ $i -lt 100 ] || { echo "server did not start"; exit 1; }; sleep 0.1
	done
	echo "[inside] curl http://'"$ADDR"':'"$PORT"'/index.html:"
	curl -sS http://'"$ADDR"':'"$PORT"'/index.html | sed "s/^/[inside]   /"
	echo "[inside] the same over IPv6, curl http://[fd00::a09:1]:'"$PORT"'/ (server bound to IPv4 only):"
	curl -sS -m 2 "http://[fd00::a09:1]:'"$PORT"'/" >/dev/null 2>&1 && echo "[inside]   answered" || echo "[inside]   refused, as on Linux"
	touch ready
	while [ ! -e done ]; do sleep 0.1; done
	kill $server
' sh "$work" &

while [ ! -e "$work/ready" ]; do
	if ! kill -0 $! 2>/dev/null; then echo "demo: ztnc-run failed" >&2; exit 1; fi
	sleep 0.1
done

say "Meanwhile, on the host"
echo "[host] addresses (ip -brief address):"
ip -brief address | sed 's/^/[host]   /'
if ip -brief address | grep -q "$ADDR"; then
	echo "[host] UNEXPECTED: the host has $ADDR"
else
	echo "[host] no interface has $ADDR"
fi
echo "[host] TCP listeners on port $PORT (ss -ltn 'sport = :$PORT'):"
if ss -ltnH "sport = :$PORT" | grep -q .; then
	ss -ltnH "sport = :$PORT" | sed 's/^/[host]   /'
	echo "[host] (something on the host listens on $PORT: not ztnc's server, which lives in ztnc-run)"
else
	echo "[host]   none"
fi

touch "$work/done"
wait
say "The server's log (inside):"
sed 's/^/[inside]   /' "$work/server.log"
