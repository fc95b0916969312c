# ferry — build and test. `make test` is what CI runs (.ci/run).
GO      ?= go
# Two cores: keep package-level parallelism low so browser and network tests
# are not starved. -count=1: some tests build and run the ferry binary
# themselves, which the test cache cannot see.
GOTEST  ?= $(GO) test -count=1 -p 2 -timeout 25m

# Our Go sources (third_party/ and node_modules/ are others').
GOSRC    = $$(find . -name '*.go' -not -path './third_party/*' -not -path '*/node_modules/*')

.PHONY: all build test deps web web-check web-test gen-check vet unit third-party-test fuzz bench bench-store bench-paths loadtest clean

all: build

build: web
	$(GO) build -o bin/ferry ./cmd/ferry

deps:
	scripts/deps.sh

# Rebuild the embedded browser bundle (web/dist) from web/src.
web:
	cd web && npm ci --no-audit --no-fund --silent && npm run --silent build

# The committed bundle must be exactly what the sources build to.
web-check: web
	git diff --exit-code --stat -- web/dist || { echo "web/dist is stale: run 'make web' and commit it" >&2; exit 1; }
	test -z "$$(git status --porcelain -- web/dist)" || { echo "web/dist has uncommitted files: run 'make web' and commit them" >&2; git status --porcelain -- web/dist; exit 1; }

# The web client's copy of the protocol's constants and case folding is
# generated from the Go definitions (internal/proto/gen); committed, like
# web/dist, and must be what they generate now.
gen-check:
	$(GO) generate ./internal/proto
	git diff --exit-code --stat -- web/src/protocol/constants_gen.ts web/src/protocol/fold_gen.ts || { echo "web/src/protocol/*_gen.ts is stale: run 'go generate ./internal/proto', rebuild web/dist and commit them" >&2; exit 1; }
	test -z "$$(git status --porcelain -- web/src/protocol/constants_gen.ts web/src/protocol/fold_gen.ts)" || { echo "web/src/protocol/*_gen.ts is not committed" >&2; exit 1; }

web-test: web
	cd web && npm test --silent

# staticcheck at a pinned version, built from the module proxy (cached).
STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2

vet: gen-check
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/ferry   # the Dockerfile's static build
	# third_party/ is pion's code with small patches: left as upstream formats it.
	test -z "$$(gofmt -l $(GOSRC))" || { gofmt -l $(GOSRC); echo "gofmt needed" >&2; exit 1; }
	# ...byte for byte, except the files each FERRY.md lists, every patch marked.
	GO=$(GO) scripts/check-third-party.sh

# The packages with real browsers and network namespaces assert on timing
# (page responsiveness, reconnect times): on two cores they run one at a
# time, after the others.
HEAVY = ./internal/e2e ./internal/netlab

# Unit, fuzz seed corpora, end-to-end (browsers, NAT lab), and upstream's
# tests of the patched pion modules in third_party/ — everything. Heavy
# tests (internal/testenv) run, and fail if what they need is missing.
test: export FERRY_TEST_HEAVY = 1
test: deps web-check web-test vet
	$(GOTEST) $$($(GO) list ./... | grep -v -e '/internal/e2e$$' -e '/internal/netlab$$')
	$(GOTEST) -p 1 $(HEAVY)
	$(MAKE) third-party-test

# The fast tier: every test that needs only Go (no root, browser, Redis or
# coturn), with the race detector. Heavy tests are skipped; the summary
# lists each with what it needs.
unit: export FERRY_TEST_HEAVY = 0
unit:
	$(GO) test -race -count=1 -p 2 -timeout 15m -json ./... | $(GO) run ./internal/testenv/summary

# pion's own test suites, and ours of the patches, on third_party/ (the
# upstream tests come from the module cache).
third-party-test:
	GO=$(GO) scripts/test-third-party.sh

# Short coverage-guided fuzzing of every decoder (not part of `test`).
FUZZTIME ?= 20s
fuzz:
	@for p in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$p | grep ^Fuzz); do \
			echo "== $$p $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$p || exit 1; \
		done; \
	done

bench: build
	bin/ferry bench

# Stored transfers: upload and download through a `ferry serve` child, on
# disk and on SeaweedFS (built once by scripts/weed.sh), next to a plain S3
# client; the server's RSS with three downloads at once. Not part of `test`.
bench-store: build
	scripts/weed.sh >/dev/null
	bin/ferry bench --store $(BENCHFLAGS)

# Signaling load test, verbose: 5 000 concurrent WebSockets (2 500 pairs)
# against one `ferry serve` process, with the memory store and with Redis.
# It also runs (quietly) as part of `test`.
loadtest:
	$(GO) test -count=1 -timeout 5m -run '^TestSignalingLoad' -v ./internal/scaletest/

clean:
	rm -rf bin

# The path benchmark (issue 13): iperf3, croc and ferry side by side on
# emulated paths (internal/netlab BenchmarkPaths; root, as `make test`).
# Not part of `test`. Choose with NETLAB_BENCH_PATHS, _MIB, _RUNS, _TOOLS.
bench-paths: export FERRY_TEST_HEAVY = 1
bench-paths: deps
	$(GO) test -count=1 -timeout 90m -run '^$$' -bench '^BenchmarkPaths$$' -benchtime 1x ./internal/netlab
