#!/usr/bin/env bash
# Run every Go fuzz target (func Fuzz*) in the module for FUZZTIME each (`make fuzz`).
#   FUZZTIME  per-target fuzzing time (default 10s), any `go test -fuzztime` value
#   FUZZ      extended regexp selecting target names (default: all)
# New crashers are written by `go test` to the package's testdata/fuzz/ (commit them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PATH="/usr/local/go/bin:${HOME}/go/bin:${PATH}"
FUZZTIME=${FUZZTIME:-10s}
FUZZ=${FUZZ:-.}

# Fuzz targets might use the dev services; use them when they have been started.
if [ -f .dev/env ]; then
	# shellcheck disable=SC1091
	. ./.dev/env
fi

# `go test -list` prints each package's matching names, then "ok <pkg> <time>".
if ! list=$(go test -list '^Fuzz' ./...); then
	printf '%s\n' "$list" >&2
	echo "fuzz: listing fuzz targets failed (does the module build?)" >&2
	exit 1
fi
targets=()
pending=()
while IFS= read -r line; do
	case "$line" in
	Fuzz*) pending+=("$line") ;;
	ok*)
		pkg=$(awk '{print $2}' <<<"$line")
		for name in "${pending[@]}"; do
			if grep -qE -- "$FUZZ" <<<"$name"; then targets+=("$pkg $name"); fi
		done
		pending=()
		;;
	esac
done <<<"$list"

if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no fuzz targets found"
	exit 0
fi

echo "fuzz: ${#targets[@]} target(s), ${FUZZTIME} each"
failed=()
for t in "${targets[@]}"; do
	pkg=${t% *}
	name=${t#* }
	echo "==> $name ($pkg)"
	if ! go test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "$pkg"; then
		failed+=("$pkg.$name")
	fi
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: FAILED:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "fuzz: all ${#targets[@]} target(s) passed"
