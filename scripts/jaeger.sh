#!/usr/bin/env bash
# Builds Jaeger all-in-one (v2, in-memory storage) into the tools cache
# outside the module, for the tracing e2e test (test/e2e/tracing_test.go).
# Jaeger's go.mod has a replace directive, so `go install pkg@version`
# refuses it: it is built from a throwaway module that repeats the replace.
# Never part of authgateway's go.mod.
set -euo pipefail
GO=${GO:-go}
JAEGER_VERSION=v1.75.0
TOOLS_BIN=${TOOLS_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/authgateway/bin}
out=$TOOLS_BIN/jaeger-$JAEGER_VERSION
if [ -x "$out" ]; then
	echo "jaeger $JAEGER_VERSION: $out (cached)"
	exit 0
fi
mkdir -p "$TOOLS_BIN"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
cat >go.mod <<MOD
module jaegerbuild

go 1.26.0

require github.com/jaegertracing/jaeger $JAEGER_VERSION

// As in jaeger's own go.mod.
replace github.com/Shopify/sarama => github.com/Shopify/sarama v1.33.0
MOD
printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/jaegertracing/jaeger/cmd/jaeger"\n' >tools.go
"$GO" mod tidy
"$GO" build -trimpath -o "$out.tmp" github.com/jaegertracing/jaeger/cmd/jaeger
mv "$out.tmp" "$out"
echo "jaeger $JAEGER_VERSION: $out"
