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

# build_sides DIR: ztnc-run as DIR/after (this tree, or a copy of AFTER_BIN) and DIR/before
# (built from the commit BASE, or a copy of BASE_BIN), for the scripts that compare two builds.
build_sides() {
	if [ -n "${AFTER_BIN:-}" ]; then
		cp "$AFTER_BIN" "$1/after"
	else
		go build -o "$1/after" ./cmd/ztnc-run
	fi
	if [ -n "${BASE_BIN:-}" ]; then
		cp "$BASE_BIN" "$1/before"
	else
		mkdir "$1/src"
		git archive "$BASE" | tar -x -C "$1/src"
		(cd "$1/src" && go build -o "$1/before" ./cmd/ztnc-run)
	fi
}
