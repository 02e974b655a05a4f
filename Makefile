# ztnc — the two commands a new machine needs are `make demo` and `make test`; both install
# what is missing first (scripts/deps.sh).

GO      ?= go
BIN     := bin/ztnc-run
FUZZTIME ?= 20s

.PHONY: all deps build demo test unit vet fuzz bench compat clean

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

bench: deps build
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
