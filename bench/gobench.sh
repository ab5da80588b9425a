#!/usr/bin/env bash
# Runs the Go benchmarks behind the tables of docs/performance.md and
# stores their raw output, one file per table, in
# bench/results/gobench-<UTC time>/ (or the directory given as $1).
# Each table in the doc names its file; to reproduce one table alone, run
# the command written at the top of its file.
#
#   bash bench/gobench.sh               # all of them: about 10 minutes on 2 CPUs
#   bash bench/gobench.sh DIR router    # only the named tables
set -euo pipefail
cd "$(dirname "$0")/.."

out="${1:-bench/results/gobench-$(date -u +%Y-%m-%dT%H%MZ)}"
shift || true
mkdir -p "$out"

# table name, then the go test arguments that produce it.
tables=(
  "chat|-run ^\$ -bench ^BenchmarkChat -benchmem -count 5 ./internal/platform/server"
  "router|-run ^\$ -bench ^BenchmarkPick\$ -benchmem ./internal/router"
  "surfaces-translation|-run ^\$ -bench ^Benchmark(SurfaceTranslation|BedrockTranslation)\$ -benchmem -count 5 ./internal/platform/server"
  "surfaces-loopback|-run ^\$ -bench ^Benchmark(SurfacesThroughJunction|BedrockThroughJunction)\$ -benchmem -count 5 ./internal/platform/server"
  "prompt-tokens|-run ^\$ -bench . -benchmem ./internal/promptroute ./internal/tokens"
  "responses|-run ^\$ -bench ^BenchmarkResponsesVsChat\$ -benchtime 600x -count 5 ./internal/platform/server"
  "responses-translation|-run ^\$ -bench ^BenchmarkResponsesTranslation\$ -benchmem -count 5 ./internal/api/openai"
  "cache|-run ^\$ -bench ^BenchmarkResponseCache\$ -benchtime 1000x -count 3 ./internal/platform/server"
  "cache-semantic|-run ^\$ -bench ^BenchmarkSemanticLookup\$ -benchmem ./internal/respcache"
  "hosting-invocation|-run ^\$ -bench ^BenchmarkInvocation\$ -benchtime 2s ./internal/platform/server"
  "hosting-lifecycle|-run ^\$ -bench ^BenchmarkEndpointLifecycle\$ -benchtime 10x ./internal/platform/server"
)

want=" $* "
for t in "${tables[@]}"; do
  name="${t%%|*}"
  args="${t#*|}"
  if [ $# -gt 0 ] && [[ "$want" != *" $name "* ]]; then
    continue
  fi
  file="$out/$name.txt"
  echo "== $name -> $file"
  {
    echo "# go test $args"
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $(go version)"
    # shellcheck disable=SC2086 # args are words on purpose
    go test $args
  } 2>&1 | tee "$file"
done
