#!/usr/bin/env bash
# The offline demo (make demo): a self-hosted ZeroTier network on this machine, no internet.
#
#   1. our root server (ztnc-run root) writes a planet naming itself;
#   2. our network controller (ztnc-run controller) serves zerotier-one's /controller API;
#   3. curl creates a private network with an IPv4 pool, its route and RFC 4193 IPv6;
#   4. python3 -m http.server runs under one ztnc-run --nwid (its own home, its own node);
#   5. curl runs under another ztnc-run --nwid (another home, another node);
#   both members are authorized through the API by the addresses they print, and the client
#   fetches a page from the server over the virtual network, IPv4 and IPv6. Everything runs on
#   loopback, which our nodes allow between themselves (zerotier-one never uses loopback).
#   Every process is stopped and every file removed on exit.
#
# Environment: ZTNC (the binary, default bin/ztnc-run), DEMO_TIMEOUT (seconds any one step may
# take, default 30), DEMO_KEEP=DIR (copy the work directory, logs included, there on exit).
set -euo pipefail
cd "$(dirname "$0")/.."
ZTNC=$(realpath "${ZTNC:-bin/ztnc-run}")
. scripts/lib.sh
HTTP_PORT=8080
TIMEOUT=${DEMO_TIMEOUT:-30}

work=$(mktemp -d "${TMPDIR:-/tmp}/ztnc-demo.XXXXXX")
pids=()
cleanup() {
	local status=$?
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	[ -n "${DEMO_KEEP:-}" ] && cp -r "$work" "$DEMO_KEEP"
	rm -rf "$work"
	exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cmd() { printf '\033[2m$ %s\033[0m\n' "$*"; }
fail() {
	echo "demo: $*" >&2
	for f in "$work"/*.log; do [ -e "$f" ] && sed "s|^|  $(basename "$f" .log): |" "$f" >&2; done
	exit 1
}

# wait_for DESCRIPTION PID COMMAND...: polls COMMAND every 50 ms until it succeeds, failing
# if the process PID has exited or TIMEOUT seconds pass.
wait_for() {
	local what=$1 pid=$2 deadline=$((SECONDS + TIMEOUT))
	shift 2
	until "$@" >/dev/null 2>&1; do
		kill -0 "$pid" 2>/dev/null || fail "$what: the process exited"
		((SECONDS < deadline)) || fail "$what: not after ${TIMEOUT}s"
		sleep 0.05
	done
}

# node_address HOME: the ZeroTier address of a node's identity (users authorize this).
node_address() { cut -d: -f1 "$1/identity.public"; }

# api METHOD PATH [JSON]: a call to the controller's API with its token.
api() {
	curl -sSf -X "$1" -H "X-ZT1-Auth: $(cat "$work/ctl/authtoken.secret")" ${3:+-d "$3"} "$API$2"
}

# json_field NAME: prints a field of the JSON object on stdin (strings and string arrays).
json_field() {
	python3 -c 'import json, sys
v = json.load(sys.stdin).get(sys.argv[1])
print(" ".join(v) if isinstance(v, list) else v if v is not None else "")' "$1"
}

# ipv6_of LOG: a member's IPv6 address, from the addresses of its "status=OK" line.
ipv6_of() {
	sed -n 's/.*status=OK.* addresses="\[\([^]]*\)\].*/\1/p' "$1" | tr ' ' '\n' | awk -F/ '/:/ && !n++ { print $1 }'
}

# status_lines LOG: a member's network status lines, as ztnc-run prints them on stderr.
status_lines() { grep -E 'zerotier node started|network status' "$1" | sed 's/^time=[^ ]* //; s/^/    /' || true; }

start=$SECONDS
root_port=$(free_port)
bold "1. Root server"
cmd "ztnc-run root --home \$work/root --bind 127.0.0.1 --port $root_port"
"$ZTNC" root --home "$work/root" --bind 127.0.0.1 --port "$root_port" >"$work/root.log" 2>&1 &
pids+=($!)
wait_for "root" $! grep -q 'root serving' "$work/root.log"
echo "   root $(node_address "$work/root") at 127.0.0.1/$root_port; planet: \$work/root/planet"
planet="$work/root/planet"

bold "2. Network controller"
ctl_port=$(free_port)
cmd "ztnc-run controller --home \$work/ctl --bind 127.0.0.1 --port $ctl_port --planet \$work/root/planet"
"$ZTNC" controller --home "$work/ctl" --bind 127.0.0.1 --port "$ctl_port" --planet "$planet" >"$work/ctl.log" 2>&1 &
pids+=($!)
API="http://127.0.0.1:$ctl_port"
wait_for "controller API" $! api GET /controller
ctl_addr=$(node_address "$work/ctl")
echo "   controller $ctl_addr, API $API/controller (token in \$work/ctl/authtoken.secret)"

bold "3. A network, created through the controller's API"
spec='{"name":"ztnc-demo","private":true,"v4AssignMode":{"zt":true},"v6AssignMode":{"rfc4193":true},
 "routes":[{"target":"203.0.113.0/24"}],"ipAssignmentPools":[{"ipRangeStart":"203.0.113.1","ipRangeEnd":"203.0.113.254"}]}'
cmd "curl -H \"X-ZT1-Auth: \$TOKEN\" -X POST $API/controller/network/${ctl_addr}______ -d '$spec'"
nwid=$(api POST "/controller/network/${ctl_addr}______" "$spec" | json_field id)
[ ${#nwid} -eq 16 ] || fail "no network ID from the API"
echo "   network $nwid: private, IPv4 pool 203.0.113.1-254 (a documentation range) routed on it, RFC 4193 IPv6"

# authorize NAME HOME PID: waits for the member's identity, prints the address a user would
# authorize, and authorizes it through the API.
authorize() {
	wait_for "$1's identity" "$3" test -s "$2/identity.public"
	local addr
	addr=$(node_address "$2")
	echo "   $1 member address (ztnc-run printed it on stderr): $addr"
	cmd "curl -H \"X-ZT1-Auth: \$TOKEN\" -X POST $API/controller/network/$nwid/member/$addr -d '{\"authorized\":true}'"
	api POST "/controller/network/$nwid/member/$addr" '{"authorized":true}' >/dev/null
}

# assigned ADDR: the IPv4 addresses the API reports for a member (empty until assigned).
assigned() { api GET "/controller/network/$nwid/member/$1" | json_field ipAssignments; }

bold "4. Server: python3 -m http.server under ztnc-run, with its own home"
mkdir -p "$work/www"
echo "Hello over ZeroTier network $nwid, from python3 -m http.server under ztnc-run." >"$work/www/index.html"
cmd "ztnc-run --nwid $nwid --home \$work/server --planet \$work/root/planet -- python3 -m http.server $HTTP_PORT --bind ::"
(cd "$work/www" && exec "$ZTNC" --nwid "$nwid" --home "$work/server" --planet "$planet" -- \
	python3 -u -m http.server "$HTTP_PORT" --bind :: >"$work/server.out" 2>"$work/server.log") &
server=$!
pids+=("$server")
authorize server "$work/server" $server
wait_for "server on the network" $server grep -q 'Serving HTTP' "$work/server.out"
server_addr=$(node_address "$work/server")
server_v4=$(assigned "$server_addr")
server_v6=$(ipv6_of "$work/server.log")
status_lines "$work/server.log"
echo "   server: $server_addr, IPv4 $server_v4 (from the API), IPv6 $server_v6"

bold "5. Client: curl under another ztnc-run, with another home"
url4="http://$server_v4:$HTTP_PORT/"
url6="http://[$server_v6]:$HTTP_PORT/"
cmd "ztnc-run --nwid $nwid --home \$work/client --planet \$work/root/planet -- curl -sS $url4 -g $url6"
"$ZTNC" --nwid "$nwid" --home "$work/client" --planet "$planet" -- \
	curl -sS --max-time 10 "$url4" -g "$url6" >"$work/client.out" 2>"$work/client.log" &
client=$!
authorize client "$work/client" $client
wait $client || fail "the client failed (exit $?)"
client_addr=$(node_address "$work/client")
status_lines "$work/client.log"

bold "6. Result"
echo "   client's output (IPv4, then IPv6):"
sed 's/^/     | /' "$work/client.out"
[ "$(grep -c Hello "$work/client.out")" -eq 2 ] || fail "the client did not get the page twice"
echo "   member $server_addr (server): $(assigned "$server_addr"), $server_v6"
echo "   member $client_addr (client): $(assigned "$client_addr"), $(ipv6_of "$work/client.log")"
echo "   the host meanwhile (the server lives inside ztnc-run, not on the host):"
if ip -brief address | grep -qF "$server_v4"; then
	echo "     an interface has $server_v4 (UNEXPECTED)"
else
	echo "     no interface has $server_v4"
fi
if ss -ltnH "sport = :$HTTP_PORT" | grep -q .; then
	echo "     something listens on port $HTTP_PORT (not the demo's server)"
else
	echo "     nothing listens on port $HTTP_PORT"
fi
echo "   server's requests log:"
grep -v '^time=' "$work/server.log" | sed 's/^/     | /' || true

bold "Done in $((SECONDS - start)) s; stopping the server, the controller and the root"
