#!/usr/bin/env bash
# Scan the module's dependencies and the standard library for known
# vulnerabilities that our code calls (`make vulncheck`, part of `make lint`
# and CI). Exits non-zero on a called vulnerable symbol.
#
# govulncheck's default database (vuln.go.dev) cannot be reached from these
# machines, and an empty local database makes it report "No vulnerabilities
# found" — a false pass. So the database is built locally from the
# golang.org/x/vulndb module, which the Go module proxy serves: its
# data/osv/*.json (one OSV entry per report) are indexed by vulndb's own
# cmd/indexdb into the v1 layout that `govulncheck -db file://DIR` reads
# (index/db.json, index/modules.json, ID/GO-….json). The result is cached
# outside the checkout, per pinned version; bump VULNDB_VERSION to refresh.
#
# Every run first scans a scratch module that calls a known-vulnerable
# symbol (golang.org/x/text@v0.3.5 language.ParseAcceptLanguage,
# GO-2022-1059) and fails unless the database reports it.
#
#   vulncheck.sh          scan ./... (the module at the repository root)
#   vulncheck.sh db       build the database if needed and print its path
#
# Environment: OV_DEV_CACHE (default ~/.cache/openvisit), VULNDB_VERSION and
# GOVULNCHECK_VERSION (default: the pins below).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PATH="/usr/local/go/bin:${HOME}/go/bin:${PATH}"

# Pinned: vulndb has no tags (a pseudo-version is a commit of the database);
# govulncheck is golang.org/x/vuln's release.
VULNDB_VERSION=${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}
GOVULNCHECK_VERSION=${GOVULNCHECK_VERSION:-v1.10.0}
CACHE=${OV_DEV_CACHE:-${HOME}/.cache/openvisit}
DB=$CACHE/vulndb/$VULNDB_VERSION
ACCEPT=deploy/dev/vulncheck-accept.txt
# A sane database holds thousands of reports; fewer means a broken build.
MIN_REPORTS=1000

log() { printf 'vulncheck: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# go commands that must not see this module (or a workspace).
outside() { (cd / && GOFLAGS=-mod=mod GOWORK=off "$@"); }

build_db() {
	[ -f "$DB/.complete" ] && return 0
	log "building the vulnerability database golang.org/x/vulndb@$VULNDB_VERSION into $DB (first time: ~2 minutes)"
	local src tmp n
	src=$(outside go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -d "$src/data/osv" ] || die "golang.org/x/vulndb@$VULNDB_VERSION has no data/osv directory"
	n=$(find "$src/data/osv" -name 'GO-*.json' | wc -l)
	[ "$n" -ge "$MIN_REPORTS" ] || die "golang.org/x/vulndb@$VULNDB_VERSION holds only $n OSV reports"
	mkdir -p "$CACHE/vulndb"
	rm -rf "$CACHE/vulndb/.build"
	tmp=$CACHE/vulndb/.build
	outside go run "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION" -vulns "$src/data/osv" -out "$tmp" >&2
	[ -s "$tmp/index/db.json" ] && [ -s "$tmp/index/modules.json" ] || die "indexdb wrote no index"
	n=$(find "$tmp/ID" -name 'GO-*.json' | wc -l)
	[ "$n" -ge "$MIN_REPORTS" ] || die "the built database holds only $n entries"
	touch "$tmp/.complete"
	rm -rf "$DB"
	mv "$tmp" "$DB"
	log "database ready: $n entries"
}

govulncheck() {
	GOFLAGS=-buildvcs=false go run "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION" -db "file://$DB" "$@"
}

# The database must catch a known case, or every clean scan means nothing.
canary() {
	local dir=$WORK/canary
	mkdir -p "$dir"
	cat >"$dir/go.mod" <<-'EOF'
		module example.com/vulncheck-canary

		go 1.21

		require golang.org/x/text v0.3.5
	EOF
	cat >"$dir/main.go" <<-'EOF'
		package main

		import "golang.org/x/text/language"

		func main() { _, _, _ = language.ParseAcceptLanguage("en") }
	EOF
	(cd "$dir" && GOFLAGS=-mod=mod GOWORK=off go mod tidy >/dev/null 2>&1) || die "canary: go mod tidy failed"
	(cd "$dir" && GOWORK=off govulncheck -format json ./...) >"$WORK/canary.json" || die "canary: govulncheck failed to run"
	go run ./deploy/dev/vulncheck -expect GO-2022-1059 <"$WORK/canary.json" >&2
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/openvisit-vulncheck.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
build_db
if [ "${1:-}" = db ]; then
	echo "$DB"
	exit 0
fi
canary || die "the database at $DB missed a known vulnerability; delete it and run again"
log "govulncheck@$GOVULNCHECK_VERSION ./... (database $VULNDB_VERSION)"
govulncheck -format json ./... >"$WORK/scan.json" || die "govulncheck failed to run"
go run ./deploy/dev/vulncheck -accept "$ACCEPT" <"$WORK/scan.json"
