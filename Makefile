# ztnc — the two commands a new machine needs are `make demo` and `make test`; both install
# what is missing first (scripts/deps.sh).

GO      ?= go
BIN     := bin/ztnc-run
FUZZTIME ?= 20s

.PHONY: all deps build demo test unit vet race fuzz bench bench-supervisor bench-udp bench-matrix compat clean

all: build

deps:
	./scripts/deps.sh

build:
	$(GO) build -o $(BIN) ./cmd/ztnc-run

# The main job: an offline demo of ztnc-run.
demo: deps build
	./scripts/demo.sh

# Everything CI runs: static checks, unit tests, integration tests with real programs.
test: deps vet
	$(GO) test -count=1 -timeout 60m ./...

unit: vet
	$(GO) test -count=1 -short ./...

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# The tests under the race detector: the unit tests, then the integration and interop tests
# on a ztnc-run built with -race (ZTNC_RUN), which exits at its first report so that the test
# running it fails. Not the compatibility matrix: each of its members makes a new identity,
# which takes too long under the detector for its set-up timeouts.
race: deps vet
	$(GO) test -race -count=1 -short ./internal/... ./netstack/... ./zt/... ./notify/... ./supervisor/... ./cmd/...
	$(GO) build -race -o bin/race/ztnc-run ./cmd/ztnc-run
	ZTNC_RUN=$(CURDIR)/bin/race/ztnc-run GORACE=halt_on_error=1 $(GO) test -count=1 -timeout 60m \
		./tests/ ./tests/host/ ./tests/selfhosted/ ./tests/interop/ ./tests/ztinterop/

# Runs every fuzz target for FUZZTIME each.
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

# The compatibility matrix (tests/compat): real servers and clients in every placement that
# runs here (COMPAT_PLACEMENTS=best, or a list of host,netns,local,zt); writes and prints
# docs/compatibility.md.
COMPAT_PLACEMENTS ?= all
compat: deps
	@mkdir -p docs
	$(GO) test -count=1 -timeout 30m -run '^TestMatrix$$' ./tests/compat/ \
		-args -compat.placements=$(COMPAT_PLACEMENTS) -compat.report=$(CURDIR)/docs/compatibility.md; \
		status=$$?; cat docs/compatibility.md; exit $$status

# The benchmark suite worth running (bench/run.sh): component benchmarks, then the side-by-side
# matrix (veth, zerotier-one when ZT1_BIN is set, ztnc-run) with CPU time per unit of work.
# Env: OUT RUNS DURATION BASE MATRIX_FLAGS ZT1_BIN (see bench/run.sh); results in docs/benchmarks.md.
bench: deps build
	./bench/run.sh

# Supervisor benchmarks side by side with host loopback (docs/benchmarks.md).
bench-supervisor: deps
	./bench/supervisor.sh

# UDP datagrams/s against host loopback, TCP before/after UDP support (docs/benchmarks.md).
bench-udp: deps
	./bench/udp.sh

# Side-by-side benchmark matrix (bench/matrix, needs root): the same programs over plain veth
# and, when ZT1_BIN points to zerotier-one, over its kernel TAP and between ztnc-run members.
# Prints a markdown table. Example: make bench-matrix BENCH_MATRIX_FLAGS="-runs 3 -o /tmp/m.md"
bench-matrix: deps build
	$(GO) build -o bin/bench-matrix ./bench/matrix
	bin/bench-matrix $(BENCH_MATRIX_FLAGS)

clean:
	rm -rf bin
