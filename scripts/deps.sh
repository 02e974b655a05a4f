#!/usr/bin/env bash
# Installs what ztnc's build, demo and tests need on a fresh Debian machine: the Debian packages
# listed in .ci/apt-packages and the Go modules in go.mod. As root it installs; otherwise it prints
# the exact command to run and fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# Go first: without it nothing else is worth installing.
if ! command -v go >/dev/null; then
	echo "ztnc: Go 1.26 is required (https://go.dev/dl); put it on PATH" >&2
	exit 1
fi

mapfile -t want < <(grep -v '^\s*#' .ci/apt-packages | sed 's/\s//g' | grep -v '^$')
missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
	cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		echo "ztnc: missing Debian packages; run as root:" >&2
		echo "  $cmd" >&2
		exit 1
	fi
	echo "ztnc: installing ${missing[*]}" >&2
	sh -c "$cmd" >&2
fi
go mod download
