#!/usr/bin/env bash
# `make test`: vet, staticcheck, every test with the race detector, and a
# short run of every fuzz target, each step timed. Tests report one line per
# package as it finishes (gotestsum, installed on first use into a cache
# outside the module; plain `go test -json` through scripts/testreport where
# it cannot be installed), then the skipped tests with their reasons, the
# slowest tests and a closing count.
#
# With AUTHGATEWAY_REQUIRE_REDIS/NGINX/BROWSER=1 (CI), those tests fail
# instead of skipping, and any skip that mentions such a part fails the run.
set -uo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
TOOLS_BIN=${TOOLS_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/authgateway/bin}
GOTESTSUM_VERSION=v1.13.0
GOTESTSUM=$TOOLS_BIN/gotestsum-$GOTESTSUM_VERSION
EVENTS=${TEST_EVENTS:-bin/test-events.json}
mkdir -p "$(dirname "$EVENTS")"

steps=()
total_start=$SECONDS
status=0
step() { # step NAME COMMAND...: run, time and record one step
	local name=$1 start=$SECONDS
	shift
	echo "==> $name"
	"$@"
	local rc=$?
	steps+=("$name $((SECONDS - start))s$([ $rc -ne 0 ] && echo ' FAILED')")
	[ $rc -ne 0 ] && status=1
	return $rc
}

gotestsum_available() {
	[ -x "$GOTESTSUM" ] && return 0
	echo "installing gotestsum $GOTESTSUM_VERSION into $TOOLS_BIN (once)"
	mkdir -p "$TOOLS_BIN" &&
		GOBIN="$TOOLS_BIN" "$GO" install "gotest.tools/gotestsum@$GOTESTSUM_VERSION" &&
		mv "$TOOLS_BIN/gotestsum" "$GOTESTSUM" && return 0
	echo "could not install gotestsum: reporting with scripts/testreport instead"
	return 1
}

# -vet=off: `go vet ./...` ran in full just before.
test_args=(-race -count=1 -timeout 15m -vet=off ./...)
run_tests() {
	if gotestsum_available; then
		"$GOTESTSUM" --format pkgname --format-icons text --hide-summary skipped \
			--jsonfile "$EVENTS" -- "${test_args[@]}"
	else
		"$GO" test -json "${test_args[@]}" 2>&1 | "$GO" run ./scripts/testreport stream -json "$EVENTS"
	fi
}

report() {
	local required=()
	[ "${AUTHGATEWAY_REQUIRE_REDIS:-}" = 1 ] && required+=("redis")
	[ "${AUTHGATEWAY_REQUIRE_NGINX:-}" = 1 ] && required+=("nginx")
	[ "${AUTHGATEWAY_REQUIRE_BROWSER:-}" = 1 ] && required+=("chrom" "browser")
	[ "${AUTHGATEWAY_REQUIRE_JAEGER:-}" = 1 ] && required+=("jaeger")
	local pattern
	pattern=$(IFS='|'; echo "${required[*]:-}")
	"$GO" run ./scripts/testreport summary ${pattern:+-fail-skips "(?i)$pattern"} "$EVENTS"
}

step vet "$GO" vet ./...
step staticcheck "$GO" tool staticcheck ./...
step tests run_tests
step "test report" report
step "fuzz ($FUZZTIME per target)" env FUZZTIME="$FUZZTIME" GO="$GO" scripts/fuzz.sh

echo
echo "make test: $(IFS=','; echo "${steps[*]}" | sed 's/,/, /g'); total $(( (SECONDS - total_start) / 60 ))m$(( (SECONDS - total_start) % 60 ))s"
[ $status -eq 0 ] && echo "make test: ok" || echo "make test: FAILED"
exit $status
