# crmgate — see README.md. `make demo` runs the demo, `make test` runs every test.
SHELL    := /bin/bash
GO       ?= go
BIN      := bin/crmgate
FUZZTIME ?= 60s
BENCHTIME ?= 1s

.PHONY: build demo test test-deps vet fuzz bench bench-go bench-e2e bench-policy schema clean
.PHONY: deploy-check

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/crmgate

## demo: build and run the complete demo on loopback (Ctrl-C to stop)
demo: build
	./$(BIN) demo $(DEMO_FLAGS)

## test: install what the tests need, then vet and run every test with the race detector
test: test-deps vet
	$(GO) test -race -count=1 -timeout 25m ./...

# Debian packages whose programs the tests run for real, each named like its
# command: redis-server (stores and rate limits on loopback), chromium
# (headless browser tests, see internal/chrometest) and haproxy (the PROXY
# protocol balancer of e2e/proxyprotocol_test.go). The opa command is built
# from the Go module proxy instead (internal/opabin).
TEST_PKGS := redis-server chromium haproxy

test-deps:
	@$(GO) mod download
	@missing=; for p in $(TEST_PKGS); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	 if [ -n "$$missing" ]; then \
	   echo "installing$$missing (tests run real ones)"; \
	   if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	   $$sudo apt-get update -qq && \
	   $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	 fi
	@for p in $(TEST_PKGS); do command -v $$p >/dev/null || { echo "$$p is still missing"; exit 1; }; done
	@# The opa command of the embedded OPA version, for the tests that
	@# compare with a real OPA server: built once (minutes), then cached.
	@$(GO) run ./internal/opabin/install >/dev/null

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	 if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## fuzz: run every fuzz target for FUZZTIME each (seeds live in testdata/fuzz)
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
	  d=$$(dirname $$f); \
	  for t in $$(grep -oE '^func Fuzz[A-Za-z0-9_]+' $$f | cut -d' ' -f2); do \
	    echo "== $$d $$t ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$d; \
	  done; \
	done

## bench: Go micro-benchmarks, the end-to-end harness in bench/, then embedded policy decisions vs. an OPA server
bench: bench-go bench-e2e bench-policy

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

bench-e2e:
	./bench/run

## bench-policy: decisions of the embedded policy engine vs. an OPA server on loopback (POLICY_BENCH_FLAGS=-quick for a short run)
bench-policy:
	$(GO) run ./bench/cmd/policycompare $(POLICY_BENCH_FLAGS)

schema:
	@$(GO) run ./cmd/crmgate config schema

clean:
	rm -rf bin

## deploy-check: validate the deployment recipes in deploy/ (configs, Dockerfile, compose, Kubernetes, systemd) offline
deploy-check:
	./deploy/check.sh
