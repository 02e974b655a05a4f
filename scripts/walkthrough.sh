#!/usr/bin/env bash
# The 2015 Network Containers walkthrough, redone with ztnc-run and runnable offline: one
# long-lived service per home, networks joined with "ztnc-run join", programs started later
# with "ztnc-run attach" sharing that service's node and addresses, reached from another
# member of the network.
#
# Offline, the ZeroTier network is our own: a root ("ztnc-run root") and a controller
# ("ztnc-run controller") on 127.0.0.1, set up first. README.md quotes the walkthrough part;
# tests/host (TestWalkthrough) runs this script, as an unprivileged user.
set -euo pipefail
cd "$(dirname "$0")/.."
ZTNC=$(realpath "${ZTNC:-bin/ztnc-run}")
. scripts/lib.sh

work=$(mktemp -d "${TMPDIR:-/tmp}/ztnc-walkthrough.XXXXXX")
pids=()
cleanup() {
	status=$?
	if [ "$status" -ne 0 ]; then
		for f in "$work"/*.log; do
			[ -e "$f" ] && { echo "--- $f"; tail -n 30 "$f"; } >&2
		done
	fi
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
# The commands read as a user types them: ztnc-run is on PATH.
mkdir "$work/bin"
ln -s "$ZTNC" "$work/bin/ztnc-run"
PATH=$work/bin:$PATH

# run CMD...: shows CMD as typed, then runs it; start CMD...: the same, in the background.
exec 3>&1 # where the commands are shown, whatever their own output's redirection
run() {
	printf '\n\033[1m$ %s\033[0m\n' "$*" >&3
	"$@"
}
start() {
	printf '\n\033[1m$ %s &\033[0m\n' "$*" >&3
	"$@" &
	pids+=($!)
}
# until_ok TRIES CMD...: runs CMD every 0.2 s until it succeeds.
until_ok() {
	local n=$1
	shift
	until "$@" >/dev/null 2>&1; do
		n=$((n - 1))
		[ "$n" -gt 0 ] || { echo "walkthrough: gave up waiting for: $*" >&2; return 1; }
		sleep 0.2
	done
}

# --- Set-up: a root and a controller of our own, on loopback ------------------------------
ztnc-run root --home "$work/root" --bind 127.0.0.1 --port "$(free_port)" 2>"$work/root.log" &
pids+=($!)
until_ok 100 test -s "$work/root/planet"
planet=$work/root/planet
ztnc-run controller --home "$work/ctl" --planet "$planet" --bind 127.0.0.1 --port "$(free_port)" \
	>"$work/ctl.log" 2>&1 &
pids+=($!)
until_ok 150 grep -q 'API http://' "$work/ctl.log"
api=$(grep -o 'API http://[0-9.:]*' "$work/ctl.log" | cut -d' ' -f2)
token=$(cat "$work/ctl/authtoken.secret")
ctl() { curl -sSf -H "X-ZT1-Auth: $token" "$@"; }
until_ok 100 ctl "$api/controller"
ctladdr=$(ztnc-run status --home "$work/ctl" | cut -d' ' -f3)
NWID=$(ctl -X POST "$api/controller/network/${ctladdr}______" -d '{"name": "walkthrough",
	"private": true, "v4AssignMode": {"zt": true}, "routes": [{"target": "203.0.113.0/24"}],
	"ipAssignmentPools": [{"ipRangeStart": "203.0.113.1", "ipRangeEnd": "203.0.113.254"}]}' |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
authorize() { ctl -X POST -d '{"authorized": true}' "$api/controller/network/$NWID/member/$1" >/dev/null; }
# Every node finds the root through the planet in its home.
home=$work/netcon-test-home
member=$work/member
mkdir -p "$home" "$member"
cp "$planet" "$home/planet"
cp "$planet" "$member/planet"
echo "Set up offline: root and controller on 127.0.0.1, network $NWID (203.0.113.0/24)."

# --- The walkthrough (README.md quotes these commands) -------------------------------------
start ztnc-run service --home "$home" --bind 127.0.0.1 2>"$work/service.log"
until_ok 150 ztnc-run status --home "$home"
run ztnc-run status --home "$home"

run ztnc-run join --home "$home" "$NWID"
authorize "$(ztnc-run status --home "$home" | cut -d' ' -f3)"

until_ok 150 sh -c "ztnc-run listnetworks --home '$home' | grep -q ' OK .*203\\.0\\.113\\.'"
run ztnc-run listnetworks --home "$home"
addr=$(ztnc-run listnetworks --home "$home" | awk 'NR > 1 { split($NF, a, "/"); print a[1] }')

site=$work/site
mkdir -p "$site"
echo "Hello from a program attached to the ztnc-run service at $addr." >"$site/index.html"
start ztnc-run attach --home "$home" -- python3 -m http.server 8080 --directory "$site" >"$work/server.log" 2>&1
until_ok 100 ztnc-run attach --home "$home" -- curl -sSf -o /dev/null http://127.0.0.1:8080/
run ztnc-run attach --home "$home" -- curl -sS http://127.0.0.1:8080/
run env ZTNC_HOME="$home" ZT_NC_NWID="$NWID" ztnc-run -- curl -sS "http://$addr:8080/"

# Another member of the network: a ztnc-run with a home (and node) of its own.
ztnc-run idtool generate "$member/identity.secret" "$member/identity.public" >/dev/null
authorize "$(cut -d: -f1 "$member/identity.public")"
run ztnc-run --home "$member" --bind 127.0.0.1 --nwid "$NWID" -- curl -sS --retry 5 --retry-all-errors "http://$addr:8080/" 2>"$work/member.log"

run ztnc-run leave --home "$home" "$NWID"
run ztnc-run listnetworks --home "$home"
