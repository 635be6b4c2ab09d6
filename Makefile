# authgateway — the two commands: `make run` and `make test`.
SHELL := /bin/bash
GO    ?= go
BIN   := bin

.PHONY: build run run-legacy test test-short lint fmt bench fuzz clean compose-secrets

# `authgateway version` prints VERSION, and the commit from Go's build info
# where the checkout lets Go stamp it.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

build:
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $(BIN)/authgateway ./cmd/authgateway
	$(GO) build -trimpath -o $(BIN)/demo-upstream ./cmd/demo-upstream

# Run the gateway on configs/gateway.yaml with in-memory state and the demo
# upstream on 127.0.0.1:9000. Ctrl-C stops both.
run: build .dev/access-secret
	@$(BIN)/demo-upstream -listen 127.0.0.1:9000 & up=$$!; \
	trap "kill $$up 2>/dev/null" EXIT INT TERM; \
	$(BIN)/authgateway serve -config configs/gateway.yaml

# The same with configs/legacy.yaml: two demo upstreams as two instances of
# a legacy app (legacy-app-1 on 127.0.0.1:9000, legacy-app-2 on :9001),
# mounted at /legacy (README, "Put it in front of a legacy app"). Each one's
# PID goes to .dev/legacy-app-N.pid, so that the walkthrough can stop exactly
# that process; Ctrl-C stops all three.
run-legacy: build .dev/access-secret
	@$(BIN)/demo-upstream -listen 127.0.0.1:9000 -name legacy-app-1 & up1=$$!; \
	$(BIN)/demo-upstream -listen 127.0.0.1:9001 -name legacy-app-2 & up2=$$!; \
	trap "kill $$up1 $$up2 2>/dev/null; rm -f .dev/legacy-app-1.pid .dev/legacy-app-2.pid" EXIT INT TERM; \
	echo $$up1 > .dev/legacy-app-1.pid; echo $$up2 > .dev/legacy-app-2.pid; \
	echo "legacy-app-1 (pid $$up1) on 127.0.0.1:9000, legacy-app-2 (pid $$up2) on 127.0.0.1:9001"; \
	$(BIN)/authgateway serve -config configs/legacy.yaml

# The secrets docker compose mounts, each written once. The directory is
# private (0700); the files are 0644 so that the containers' users (65532 for
# the gateway, redis for Redis) can read them: compose mounts file secrets
# with their host owner and mode.
compose-secrets: .dev/access-secret .dev/redis.conf .dev/redis-url .dev/admin-token

# The directory is private (0700); the file is 0644 so that the container user
# (uid 65532) can read it when docker compose mounts it as a secret. 48 random
# bytes as 96 hex digits (od is POSIX; base64 flags differ between systems),
# written to a temporary file first and refused if short, so that a failed
# step never leaves an empty secret behind.
.dev/access-secret:
	@set -o pipefail; mkdir -p .dev && chmod 700 .dev && \
	head -c 48 /dev/urandom | od -An -v -tx1 | tr -d ' \n' > $@.tmp && \
	test "$$(wc -c < $@.tmp)" -eq 96 || { rm -f $@.tmp; echo "could not generate $@"; exit 1; }; \
	chmod 644 $@.tmp && mv $@.tmp $@ && echo "wrote a random dev signing secret to $@"

# The admin dashboard's token (server.admin_token_file): 32 random bytes as
# 64 hex digits, written like the signing secret.
.dev/admin-token:
	@set -o pipefail; mkdir -p .dev && chmod 700 .dev && \
	head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n' > $@.tmp && \
	test "$$(wc -c < $@.tmp)" -eq 64 || { rm -f $@.tmp; echo "could not generate $@"; exit 1; }; \
	chmod 644 $@.tmp && mv $@.tmp $@ && echo "wrote a random admin token to $@"

# Redis's password in the two forms its users read: the requirepass line
# Redis includes, and the URL the gateway connects with (hex: no escaping).
# Both are written together; if either is missing, both are rewritten.
.dev/redis.conf .dev/redis-url:
	@[ -s .dev/redis.conf ] && [ -s .dev/redis-url ] || { \
	  mkdir -p .dev && chmod 700 .dev && pw=$$(head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n') && \
	  printf 'requirepass %s\n' "$$pw" > .dev/redis.conf && printf 'redis://:%s@redis:6379/0\n' "$$pw" > .dev/redis-url && \
	  chmod 644 .dev/redis.conf .dev/redis-url && echo "wrote a random Redis password to .dev/redis.conf and .dev/redis-url"; }

# An empty secret left by an older Makefile is not up to date: make it again.
ifeq ($(shell test -s .dev/access-secret || echo empty),empty)
.PHONY: .dev/access-secret
endif

# Every test: vet, staticcheck, unit + e2e with the race detector, a short
# run of every fuzz target; progress per package, skips listed at the end
# (see scripts/test.sh).
test:
	GO=$(GO) FUZZTIME=10s scripts/test.sh

FUZZTIME ?= 30s
# Every parser's fuzz target; CI runs each for a short time, run longer by hand
# (make fuzz FUZZTIME=10m).
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)

# Load benchmark: the gateway side by side with a bare httputil.ReverseProxy
# and nginx, in one run on loopback; writes bench/results.md (see
# bench/README.md). Knobs (env or make vars): ROUNDS DURATION WARMUP CONNS
# FIXED_DURATION TOGETHER_DURATION RSS_CONNS MISS_TOKENS SCENARIOS.
bench:
	$(GO) build -trimpath -o $(BIN)/authgateway ./cmd/authgateway
	$(GO) build -trimpath -o $(BIN)/benchtool ./bench/cmd/benchtool
	$(BIN)/benchtool run -gateway $(BIN)/authgateway -out bench/results.md \
		-command "make bench $(strip $(foreach v,ROUNDS DURATION WARMUP FIXED_DURATION TOGETHER_DURATION CONNS RSS_CONNS MISS_TOKENS SCENARIOS,$(if $($(v)),$(v)=$($(v)))))"
