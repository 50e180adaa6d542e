# Everyday targets. The README's two commands need none of these.
GO ?= go

.PHONY: build test race fuzz vet lint bench bench-ingest bench-memory clean

build:
	CGO_ENABLED=0 $(GO) build -o bin/ ./cmd/contact-server ./cmd/contactctl

test:
	$(GO) test -race ./...

fuzz:
	$(GO) test ./wire -run '^$$' -fuzz FuzzDecode -fuzztime 60s

vet:
	$(GO) vet ./...
	test -z "$$(gofmt -l .)"

bench: bench-ingest bench-memory
	$(GO) test ./wire ./internal/server -run '^$$' -bench . -benchmem

bench-ingest:
	bench/ingest.sh

bench-memory:
	bench/memory.sh

clean:
	rm -rf bin data

# Chaos test against real binaries on 127.0.0.11-15 (10 minutes of faults).
.PHONY: chaos
chaos:
	CHAOS_DURATION=10m $(GO) test ./internal/chaostest -run TestChaos -count=1 -v -timeout 20m

# The container image: static binaries, then FROM scratch around them.
IMAGE ?= contactstore/contact-server:dev
.PHONY: image chaos-compose
image:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/contact-server ./cmd/contactctl
	docker build -t $(IMAGE) .

# Chaos against the Compose cluster: kill/restart, a cut-off minority, scale 3->6->3.
chaos-compose: image
	$(GO) test ./internal/composetest -run TestCompose -count=1 -v -timeout 20m
