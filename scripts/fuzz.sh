#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each. Targets are found,
# not listed: every package whose tests declare a Fuzz function is asked for
# its targets with `go test -list`, so a new target runs without editing this
# file.
#
# A target fails the run only on a real finding (a failing input written to
# testdata/fuzz); Go's fuzzing engine can also end a busy run with "context
# deadline exceeded" and no input, which is retried (twice) rather than
# reported as a finding.
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}

targets=()
for dir in $(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do
	if ! names=$("$GO" test -list '^Fuzz' "$dir"); then
		echo "$names"
		echo "listing the fuzz targets of $dir failed"
		exit 1
	fi
	for name in $(grep '^Fuzz' <<<"$names"); do
		targets+=("$dir $name")
	done
done
echo "fuzzing ${#targets[@]} targets for $FUZZTIME each"

status=0
n=0
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	n=$((n + 1))
	for attempt in 1 2 3; do
		start=$SECONDS
		out=$("$GO" test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" 2>&1)
		rc=$?
		if [ $rc -eq 0 ]; then
			execs=$(grep -o 'execs: [0-9]*' <<<"$out" | tail -1)
			printf '[%d/%d] ok   %-45s %3ds  %s\n' "$n" "${#targets[@]}" "${pkg#./} $name" $((SECONDS - start)) "$execs"
			break
		fi
		if grep -q "Failing input written to" <<<"$out"; then
			echo "$out"
			echo "[$n/${#targets[@]}] FINDING in ${pkg#./} $name"
			status=1
			break
		fi
		echo "$name: fuzzing engine error without a finding (attempt $attempt); retrying"
		[ $attempt -eq 3 ] && { echo "$out"; status=1; }
	done
done
exit $status
