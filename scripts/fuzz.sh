#!/usr/bin/env bash
# Runs each fuzz target for FUZZTIME. A target fails the run only on a real
# finding (a failing input written to testdata/fuzz); Go's fuzzing engine can
# also end a busy run with "context deadline exceeded" and no input, which is
# retried (twice) rather than reported as a finding.
set -uo pipefail
FUZZTIME=${FUZZTIME:-30s}
targets=(
  "./internal/routing FuzzNormalize"
  "./internal/routing FuzzTableMatch"
  "./internal/routing FuzzCaseFoldRoute"
  "./internal/config FuzzConfigParse"
  "./internal/strategies/jwt FuzzJWTVerify"
  "./internal/strategies/jwt FuzzJWTVerifySigned"
  "./internal/apikey FuzzParse"
  "./internal/proxy FuzzInboundHeaderNames"
  "./internal/jwscheck FuzzCheck"
)
status=0
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  for attempt in 1 2 3; do
    out=$(go test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" 2>&1)
    rc=$?
    echo "$out" | tail -3
    if [ $rc -eq 0 ]; then break; fi
    if echo "$out" | grep -q "Failing input written to"; then
      echo "$out"
      echo "FINDING in $name"
      status=1
      break
    fi
    echo "$name: fuzzing engine error without a finding (attempt $attempt); retrying"
    [ $attempt -eq 3 ] && { echo "$out"; status=1; }
  done
done
exit $status
