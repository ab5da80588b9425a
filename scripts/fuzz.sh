#!/usr/bin/env bash
# Runs every fuzz target in the repository (func FuzzXxx in a *_test.go
# file) for a short while each, within a total budget of fuzzing time:
#
#   bash scripts/fuzz.sh            # FUZZ_BUDGET seconds in all (default 60)
#   FUZZ_BUDGET=600 bash scripts/fuzz.sh
#   bash scripts/fuzz.sh ./internal/auth/sigv4   # only the targets under these packages
#
# Each target also runs its seed corpus (and any testdata/fuzz/ findings) as
# a plain test in `go test ./...`; this script searches beyond them. A
# failure leaves the input that broke it in the package's testdata/fuzz/
# directory: commit it, so the plain tests keep it.
set -euo pipefail
cd "$(dirname "$0")/.."

budget="${FUZZ_BUDGET:-60}"
roots=("$@")
[ ${#roots[@]} -gt 0 ] || roots=(./...)

targets=()
for pkg in $(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.Dir}}{{end}}' "${roots[@]}"); do
  for name in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$pkg"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    targets+=("$pkg $name")
  done
done
if [ ${#targets[@]} -eq 0 ]; then
  echo "no fuzz targets under ${roots[*]}"; exit 0
fi
each=$(( budget / ${#targets[@]} ))
[ "$each" -ge 1 ] || each=1
# count_inputs DIR prints how many saved inputs DIR holds (0 when missing).
count_inputs() { if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "== fuzz: ${#targets[@]} targets, ${each}s each"
for t in "${targets[@]}"; do
  set -- $t
  echo "-- $(realpath --relative-to=. "$1") $2"
  # Minimizing a new input of a large target (an archive) can take the
  # whole share of time; a few tries are enough here.
  corpus="$1/testdata/fuzz/$2"
  before=$(count_inputs "$corpus")
  if ! go test -run '^$' -fuzz "^$2\$" -fuzztime "${each}s" -fuzzminimizetime 50x "$1" >"$log" 2>&1; then
    after=$(count_inputs "$corpus")
    # Go 1.26's fuzz coordinator can report its own -fuzztime deadline as
    # a failure when a worker is mid-call at that instant (go.dev/issue/75804,
    # fixed in Go 1.27). That failure writes no input; a real one always does.
    if [ "$after" -eq "$before" ] && tail -n 6 "$log" | grep -q '^    context deadline exceeded$'; then
      echo "   (stopped by the toolchain's fuzztime race, go.dev/issue/75804; no failing input)"
      continue
    fi
    cat "$log"; exit 1
  fi
done
