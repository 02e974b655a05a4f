#!/usr/bin/env bash
# Protocol-core speed, side by side in one run:
#   identity generation and validation: ours vs zerotier-idtool (needs ZT1_BIN=/path/to/zerotier-one),
#   armor and armor+dearmor per cipher suite at 1432 and 2800 bytes, next to the raw primitives.
# Usage: ZT1_BIN=/opt/zt1src/zerotier-one bench/zt-crypto.sh [identity-iterations]
# Numbers are noisy when other jobs share the machine; compare the ratios of one run.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
nice go test -run '^$' -bench 'Generate|Validate' -benchtime "${n}x" ./zt/identity/ | tee -a "$out"
nice go test -run '^$' -bench 'Armor|Primitives' -benchmem ./zt/wire/ | tee -a "$out"
echo
awk '
	/^Benchmark(Generate|Validate)(ZT1)?-/ { split($1, a, "-"); t[a[1]] = $3 }
	END {
		for (k in t) if (k !~ /ZT1$/ && (k "ZT1") in t)
			printf "%-20s ours %8.1f ms   zerotier-idtool %8.1f ms   ratio %.2f\n", k, t[k]/1e6, t[k "ZT1"]/1e6, t[k "ZT1"]/t[k]
	}' "$out"
