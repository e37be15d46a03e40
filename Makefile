# OpenVisit developer targets (GNU make). `make help` lists them.
#
# Local services (PostgreSQL on 127.0.0.1:5544, MinIO on 127.0.0.1:9000, both TLS-only with a
# local CA) come from deploy/services.sh; their settings are written to .dev/env, which the
# targets below source.

SHELL := /bin/bash
# -e: the first failing command of a recipe fails the target (and make).
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)

GO       ?= go
# Package parallelism for `go test`: 2 fits the 2-core dev/CI machines.
TEST_P   ?= 2
TEST_TIMEOUT ?= 45m
FUZZTIME ?= 10s
# staticcheck 2026.1 (= v0.7.0) supports Go 1.26. (2025.1.1 is v0.6.1 on the module proxy;
# the tag name "2025.1.1" itself is not resolvable there.)
STATICCHECK_VERSION ?= v0.7.0

# The env file deploy/services.sh writes (OV_DEV_ENV_FILE overrides it, as it does there).
DEV_ENV := $(or $(OV_DEV_ENV_FILE),.dev/env)
# Go files to check with gofmt: everything except VCS, dev state, build output and testdata.
GO_FILES_CMD := find . -type f -name '*.go' -not -path './.git/*' -not -path './.dev/*' \
	-not -path './bin/*' -not -path './vendor/*' -not -path '*/testdata/*' -print0

.PHONY: help build run test lint fmt fmt-check vet staticcheck vulncheck fuzz \
	services services-stop services-status clean clean-all

help: ## list targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 18

build: ## build ./bin/openvisit
	$(GO) build -o bin/openvisit ./cmd/openvisit

services: ## install (if missing) and start PostgreSQL + MinIO + the dev OpenID provider, write .dev/env
	deploy/services.sh start

services-stop: ## stop PostgreSQL + MinIO + the dev OpenID provider (data kept)
	deploy/services.sh stop

services-status: ## show whether PostgreSQL + MinIO are running
	deploy/services.sh status

run: services build ## run the server on https://localhost:8443 (development, demo data)
	. $(DEV_ENV)
	mkdir -p .dev/data
	# Development: demo links, generated keys, and audit checkpoints locked for a day (not six years).
	export OPENVISIT_ENVIRONMENT=development OPENVISIT_DEMO=true OPENVISIT_DATA_DIR=.dev/data OPENVISIT_AUDIT_ANCHOR_RETENTION=24h
	./bin/openvisit migrate
	# The first admin's one-time setup link (printed until an admin has enrolled).
	./bin/openvisit user create --role admin --email admin@localhost --name "First admin" --if-no-admin
	echo "openvisit: serving on https://localhost:8443 (Ctrl-C stops it; 'make services-stop' stops the services)"
	exec ./bin/openvisit serve

# Runs every step even when one fails (so CI shows all problems at once), then fails if any did.
test: services ## gofmt check, go vet, go test ./... against the local services
	@. $(DEV_ENV)
	failed=()
	echo "==> gofmt"; $(MAKE) --no-print-directory fmt-check || failed+=(gofmt)
	echo "==> go vet"; $(GO) vet ./... || failed+=("go vet")
	echo "==> go test (chromium: $${OV_DEV_CHROMIUM:-not installed, browser tests skip})"
	echo "$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -p $(TEST_P) ./..."
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -p $(TEST_P) ./... || failed+=("go test")
	if [ $${#failed[@]} -gt 0 ]; then echo "FAILED: $${failed[*]}" >&2; exit 1; fi
	echo "PASS: gofmt, go vet, go test"

lint: fmt-check vet staticcheck vulncheck ## gofmt check, go vet, staticcheck, govulncheck

fmt: ## gofmt -w all Go files
	$(GO_FILES_CMD) | xargs -0 -r gofmt -w

fmt-check: ## fail if any Go file is not gofmt-formatted
	@files=$$($(GO_FILES_CMD) | xargs -0 -r gofmt -l)
	if [ -n "$$files" ]; then echo "gofmt: these files need 'gofmt -w' (or 'make fmt'):" >&2; echo "$$files" >&2; exit 1; fi

vet: ## go vet ./...
	$(GO) vet ./...

staticcheck: ## staticcheck ./... (pinned, from the module proxy)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

vulncheck: ## govulncheck ./... against a local vulnerability database (pinned; deploy/dev/vulncheck.sh)
	deploy/dev/vulncheck.sh

fuzz: ## run every Fuzz* target for FUZZTIME (default 10s); FUZZ=regexp selects targets
	FUZZTIME=$(FUZZTIME) deploy/dev/fuzz.sh

clean: ## remove bin/ and .dev/data (the services' data is kept)
	rm -rf bin .dev/data

clean-all: clean ## also stop the services and delete their data and .dev/
	deploy/services.sh purge
	rm -rf .dev

# One shell per recipe, so `. .dev/env` and `export` carry to the following lines.
.ONESHELL:
