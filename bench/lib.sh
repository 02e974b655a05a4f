# shellcheck shell=bash
# Shell functions shared by the bench/*.sh scripts (sourced from the repository's root, not
# run). Each script alternates the sides it compares round by round, collects one value per
# round and side in the associative array res[SIDE.METRIC] (space-separated), and prints the
# medians and their ratios.
. scripts/lib.sh # free_port

out=bench/out

# build PROG...: builds ztnc-run and the named programs of tests/testdata (static) into $out.
build() {
	mkdir -p "$out"
	go build -o "$out/ztnc-run" ./cmd/ztnc-run
	local p
	for p; do
		CGO_ENABLED=0 go build -o "$out/$p" "./tests/testdata/$p"
	done
}

# field NAME: the value after NAME on the program's output line.
field() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i+1)}'; }

# med KEY: the median of the values collected in res[KEY] (the caller's associative array).
# shellcheck disable=SC2154
med() { tr ' ' '\n' <<<"${res[$1]}" | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# ratio A B: A / B with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

# run_header [MORE]: the line that says when, where and under what load the numbers were taken.
run_header() {
	echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r), median of $ROUNDS rounds$*"
}
