# cctvd — see README.md. The two commands a fresh Debian machine needs:
#   make demo   simulated cameras + local S3 + cctvd, until Ctrl-C
#   make test   everything the tests need, then the tests
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
export CCTVD_TOOLS ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/cctvd-tools

# Installation layout; DESTDIR stages it (packaging).
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DOCDIR ?= $(PREFIX)/share/doc/cctvd
SYSCONFDIR ?= /etc
SYSTEMDDIR ?= /lib/systemd/system
SYSUSERSDIR ?= /usr/lib/sysusers.d
TMPFILESDIR ?= /usr/lib/tmpfiles.d
DIST ?= dist

.PHONY: all build deps test unit demo bench drill mutate vet install uninstall dist clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/cctvd ./cmd/cctvd

# deps installs ffmpeg, the test camera (GStreamer's RTSP server) and MinIO
# when missing; idempotent.
deps:
	scripts/deps.sh

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

# test runs every test against real ffmpeg, real RTSP cameras and a real
# MinIO, with the race detector: unit and pipeline tests, the fuzz targets'
# seed corpora, the short continuity drill, install and dist.
test: deps vet
	$(GO) test -race -tags integration -timeout 25m ./...

# unit: the inner loop: the tests without the integration tag, which need
# no ffmpeg, camera, MinIO, browser, root or loop device (under 30 s).
unit:
	$(GO) test ./...

demo: deps build
	scripts/demo.sh

# drill: the full continuity drill (15 minutes), the power-cut drill (5
# cuts, two cameras; needs root and loop devices) and a short fuzz run.
drill: deps build
	$(GO) test -run XXX -fuzz FuzzParse -fuzztime 30s -fuzzminimizetime 5s ./config
	$(GO) test -run XXX -fuzz FuzzParse -fuzztime 30s -fuzzminimizetime 5s ./segment
	$(GO) test -run XXX -fuzz FuzzRead -fuzztime 30s -fuzzminimizetime 5s ./internal/mp4
	$(GO) run ./tools/cmd/drill -cctvd bin/cctvd -powercut $(or $(POWERCUT_CUTS),5) -cameras 2 -report powercut-report.txt
	$(GO) run ./tools/cmd/drill -cctvd bin/cctvd -duration $(or $(DRILL_DURATION),15m) -report drill-report.txt

# mutate: mutation testing (gremlins, pinned in scripts/tools.env) of the
# packages whose tests need no server; a table of test efficacy per package,
# the mutants that lived under it. MUTATE_PKGS= picks packages;
# MUTATE_DIFF=main mutates only the lines changed since main (quick).
mutate:
	scripts/deps.sh --mutate
	$(GO) run ./scripts/mutate $(if $(MUTATE_DIFF),-diff $(MUTATE_DIFF)) $(MUTATE_PKGS)

# bench: measurements against the bare tools, one table (tools/bench/results.md).
bench: build
	scripts/deps.sh --bench
	$(GO) run ./tools/cmd/bench -cctvd bin/cctvd -out tools/bench/results.md

# install: the binary, a systemd unit, its user and folders, and
# /etc/cctvd/config.json from config.example.json (never overwritten),
# root:cctvd 0640: the service reads it and cannot rewrite its own
# credentials.
install: build
	install -D -m 0755 bin/cctvd $(DESTDIR)$(BINDIR)/cctvd
	install -d -m 0755 $(DESTDIR)$(SYSTEMDDIR)
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' init/cctvd.service > $(DESTDIR)$(SYSTEMDDIR)/cctvd.service
	chmod 0644 $(DESTDIR)$(SYSTEMDDIR)/cctvd.service
	install -D -m 0644 init/cctvd.sysusers $(DESTDIR)$(SYSUSERSDIR)/cctvd.conf
	install -D -m 0644 init/cctvd.tmpfiles $(DESTDIR)$(TMPFILESDIR)/cctvd.conf
	install -D -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -D -m 0644 -t $(DESTDIR)$(DOCDIR)/docs docs/*.md docs/*.yaml docs/*.png
	install -D -m 0644 config.example.json $(DESTDIR)$(DOCDIR)/config.example.json
	install -D -m 0644 docs/openapi.yaml $(DESTDIR)$(DOCDIR)/openapi.yaml
	install -d -m 0750 $(DESTDIR)$(SYSCONFDIR)/cctvd
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/cctvd/config.json ]; then \
		echo "install: keeping the existing $(DESTDIR)$(SYSCONFDIR)/cctvd/config.json"; \
	else install -m 0640 config.example.json $(DESTDIR)$(SYSCONFDIR)/cctvd/config.json; fi
	@# An API token from the start: without one, any local user could drive
	@# the API on 127.0.0.1 (docs/security.md). Kept if there is one.
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/cctvd/environment ]; then \
		echo "install: keeping the existing $(DESTDIR)$(SYSCONFDIR)/cctvd/environment"; \
	else (umask 027; printf 'CCTVD_API_TOKEN=%s\n' "$$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')" > $(DESTDIR)$(SYSCONFDIR)/cctvd/environment); \
		echo "install: a random API token is in $(SYSCONFDIR)/cctvd/environment (the page and curl need it)"; fi
	@if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null; then \
		systemd-sysusers $(SYSUSERSDIR)/cctvd.conf && systemd-tmpfiles --create $(TMPFILESDIR)/cctvd.conf && \
		chown root:cctvd $(SYSCONFDIR)/cctvd $(SYSCONFDIR)/cctvd/config.json && chmod 0640 $(SYSCONFDIR)/cctvd/config.json && \
		if [ -e $(SYSCONFDIR)/cctvd/environment ]; then chown root:cctvd $(SYSCONFDIR)/cctvd/environment && chmod 0640 $(SYSCONFDIR)/cctvd/environment; fi && \
		systemctl daemon-reload && echo "install: edit $(SYSCONFDIR)/cctvd/config.json, then: systemctl enable --now cctvd"; fi

# uninstall removes what install put; never recordings, and not a config
# that was edited.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/cctvd $(DESTDIR)$(SYSTEMDDIR)/cctvd.service \
		$(DESTDIR)$(SYSUSERSDIR)/cctvd.conf $(DESTDIR)$(TMPFILESDIR)/cctvd.conf
	rm -rf $(DESTDIR)$(DOCDIR)
	@if cmp -s config.example.json $(DESTDIR)$(SYSCONFDIR)/cctvd/config.json; then \
		rm -f $(DESTDIR)$(SYSCONFDIR)/cctvd/config.json; \
	elif [ -e $(DESTDIR)$(SYSCONFDIR)/cctvd/config.json ]; then \
		echo "uninstall: keeping the edited $(DESTDIR)$(SYSCONFDIR)/cctvd/config.json"; fi
	-rmdir $(DESTDIR)$(SYSCONFDIR)/cctvd 2>/dev/null
	@if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null; then systemctl daemon-reload; fi

# dist: static binaries (CGO off) for linux/amd64 and linux/arm64, version
# stamped, with their checksums.
dist:
	mkdir -p $(DIST)
	for arch in amd64 arm64; do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(DIST)/cctvd-$(VERSION)-linux-$$arch ./cmd/cctvd || exit 1; \
	done
	cd $(DIST) && sha256sum cctvd-$(VERSION)-linux-* > SHA256SUMS

clean:
	rm -rf bin dist demo-data drill-report.txt powercut-report.txt
