#!/usr/bin/env bash
# Runs every `func Fuzz...` target in the module for the given duration each (default 20s).
#
# A target that fails without writing a failing input to its testdata/fuzz directory is run
# once more: Go's fuzzing coordinator (before Go 1.27, golang/go#75804) can report "context
# deadline exceeded" as a failure when -fuzztime runs out while a worker is busy, most often
# on a loaded machine. A failing input, or a second failure, fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-20s}

# inputs DIR: the failing inputs saved in DIR so far (none if DIR does not exist).
inputs() { ls "$1" 2>/dev/null || true; }

grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
	pkg=./$(dirname "${f#./}")
	for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
		echo "== $pkg $fn"
		dir=$pkg/testdata/fuzz/$fn
		before=$(inputs "$dir")
		if go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$t" "$pkg"; then
			continue
		fi
		if [ "$(inputs "$dir")" != "$before" ]; then
			echo "fuzz: $fn wrote a failing input to $dir" >&2
			exit 1
		fi
		echo "fuzz: $fn failed without a failing input (golang/go#75804?): once more" >&2
		go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$t" "$pkg"
	done
done
