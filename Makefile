# mqim — see README.md. `make run` starts the server on embedded defaults,
# `make test` runs the whole test suite.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
BIN      := bin/mqim
PKGS     := ./...
# golangci-lint, pinned; `make lint` installs it into ./bin (git-ignored)
# from the Go module proxy when this version is missing.
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := bin/golangci-lint-$(GOLANGCI_LINT_VERSION)

.PHONY: all build web run cluster test test-cluster test-deps test-short vet fmt-check lint golangci-lint ci bench clean

all: build

build: web
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/mqim

## web: the browser libraries of the pages mqim embeds, from npm
## (web/package.json): MQTT.js for the chat demo at /demo, copied into
## web/demo/files/vendor (git-ignored). Without npm the build goes on and
## /demo says that MQTT.js is missing.
WEB_MQTTJS := web/demo/files/vendor/mqtt.min.js
web:
	@if [ ! -f web/node_modules/mqtt/dist/mqtt.min.js ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then \
		if command -v npm >/dev/null 2>&1; then \
			npm ci --prefix web --no-audit --no-fund --loglevel=error; \
		else echo "make web: npm not found; /demo will lack MQTT.js (install Node.js and run make build again)" >&2; fi; fi
	@if [ -f web/node_modules/mqtt/dist/mqtt.min.js ] && ! cmp -s web/node_modules/mqtt/dist/mqtt.min.js $(WEB_MQTTJS); then \
		cp web/node_modules/mqtt/dist/mqtt.min.js $(WEB_MQTTJS) && echo "make web: $(WEB_MQTTJS) from npm"; fi

## run: start the server with embedded defaults (data in ./data, REST :8080, MQTT :1883, WS :8083)
run: build
	./$(BIN) $(if $(CONFIG),--config $(CONFIG))

## cluster: three nodes on one machine (scripts/cluster.sh; docs/scaleout.md,
## "Running a cluster"): local PostgreSQL, a NATS server, data in
## ./data-cluster; Ctrl-C stops them all
cluster: build
	./scripts/cluster.sh

## test: the whole suite, with the race detector, then the end-to-end suites
## of cmd/mqim again on a three-node cluster (test-cluster)
test: test-deps
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(MAKE) test-cluster

## test-cluster: cmd/mqim's REST and MQTT end-to-end suites against three
## nodes on PostgreSQL and NATS, each connection on a random node
## (MQIM_TEST_CLUSTER; needs PostgreSQL, see storage/postgres/pgtest)
test-cluster: test-deps
	MQIM_TEST_CLUSTER=3 $(GO) test -race -count=1 -timeout 30m ./cmd/mqim

# MQTT.js for the browser-client end-to-end test (npm ships with Node), and
# for the demo page the browser test opens.
test-deps: web
	@if command -v npm >/dev/null 2>&1 && { [ ! -d test/js/node_modules/mqtt ] || [ ! -d test/js/node_modules/maxleap-im ]; }; then \
		npm ci --prefix test/js --no-audit --no-fund --loglevel=error; fi

test-short:
	$(GO) test -short -count=1 $(PKGS)

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi

## lint: gofmt, go vet, then golangci-lint (.golangci.yml: staticcheck,
## errcheck, unused, govet, ineffassign, sloglint, and depguard holding the
## layering of docs/architecture.md)
lint: fmt-check vet golangci-lint

golangci-lint: $(GOLANGCI_LINT)
	$(GOLANGCI_LINT) run $(PKGS)

$(GOLANGCI_LINT):
	@mkdir -p bin
	GOBIN=$(CURDIR)/bin/.golangci-lint-$(GOLANGCI_LINT_VERSION) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv bin/.golangci-lint-$(GOLANGCI_LINT_VERSION)/golangci-lint $@
	rmdir bin/.golangci-lint-$(GOLANGCI_LINT_VERSION)

ci: lint test

## bench: micro-benchmarks and the load suite against Mosquitto and bare
## mochi, three alternating rounds with the median reported (about 8
## minutes); rewrites the results section of docs/benchmarks.md
bench:
	./scripts/bench.sh -rounds 3

clean:
	rm -rf bin $(WEB_MQTTJS)
