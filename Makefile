# cctvd — see README.md. The two commands a fresh Debian machine needs:
#   make demo   simulated cameras + local S3 + cctvd, until Ctrl-C
#   make test   everything the tests need, then the tests
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
export CCTVD_TOOLS ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/cctvd-tools

.PHONY: all build deps test test-short demo bench drill fuzz vet clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/cctvd ./cmd/cctvd

# deps installs ffmpeg, the test camera (GStreamer's RTSP server) and MinIO
# when missing; idempotent.
deps:
	scripts/deps.sh

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

# test runs every test against real ffmpeg, a real RTSP camera and a real
# MinIO, with the race detector, plus the fuzz targets' seed corpora.
test: deps vet
	$(GO) test -race -timeout 20m ./...

demo: deps build
	scripts/demo.sh

clean:
	rm -rf bin dist demo-data
