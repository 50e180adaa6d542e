# Everyday targets. The README's two commands need none of these.
GO ?= go

.PHONY: build test slow fuzz vet lint bench bench-ingest bench-memory clean

build:
	CGO_ENABLED=0 $(GO) build -o bin/ ./cmd/contact-server ./cmd/contactctl

# The README's test command: the fast suite (only Go needed).
test:
	$(GO) test -race ./...

# The full suite: the fast one plus the tests behind the slow build tag
# (real-process chaos, the Compose suite when Docker answers, the long and
# large cluster tests), one package at a time: the chaos suites load both
# cores and the long cluster tests time heartbeats.
slow:
	$(GO) test -race -count=1 -tags slow -p 1 -timeout 30m ./...

fuzz:
	$(GO) test ./wire -run '^$$' -fuzz FuzzDecode -fuzztime 60s

vet:
	$(GO) vet ./...
	test -z "$$(gofmt -l .)"

# The quick checks .ci/run makes before the tests.
lint: vet
	$(GO) vet -tags slow ./...
	$(GO) mod tidy -diff
	.ci/no-binaries

bench: bench-ingest bench-memory
	$(GO) test ./wire ./internal/server -run '^$$' -bench . -benchmem

bench-ingest:
	bench/ingest.sh

bench-memory:
	bench/scale.sh 1000000

clean:
	rm -rf bin data plot

# Chaos test against real binaries on 127.0.0.11-15 (10 minutes of faults).
.PHONY: chaos
chaos:
	CHAOS_DURATION=10m $(GO) test -tags slow ./internal/chaostest -run TestChaos -count=1 -v -timeout 20m

# The container image: static binaries, then FROM scratch around them.
IMAGE ?= contactstore/contact-server:dev
.PHONY: image chaos-compose
image:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/contact-server ./cmd/contactctl
	docker build -t $(IMAGE) .

# The gossip key docker-compose.yml needs: CONTACT_GOSSIP_KEY in .env
# (gitignored, mode 0600), 32 random bytes in base64. An existing key is
# kept: members with different keys cannot talk to each other.
.PHONY: compose-key
compose-key:
	@if grep -qs '^CONTACT_GOSSIP_KEY=' .env; then echo ".env already holds a gossip key; kept"; exit 0; fi; \
	umask 077; printf 'CONTACT_GOSSIP_KEY=%s\n' "$$(head -c 32 /dev/urandom | base64 -w0)" >> .env && \
	echo "wrote a gossip key to .env (mode 0600, gitignored); docker compose reads it from there"

# Chaos against the Compose cluster: kill/restart, a cut-off minority, scale 3->6->3.
chaos-compose: image
	$(GO) test -tags slow ./internal/composetest -run TestCompose -count=1 -v -timeout 20m
