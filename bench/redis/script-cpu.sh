#!/usr/bin/env bash
# script-cpu.sh measures what the exact admission script costs redis-server
# in CPU time, for two versions of the Lua side by side: each run starts a
# fresh redis-server under `perf stat -e task-clock`, sends it N EVALSHAs
# of one admission call (a rate limit on global, budgets on global and on
# each request's key, far from their limits; REQS requests in the call,
# each with a key of its own) with `redis-benchmark -c 1`, and prints the
# server's CPU time per call. The versions alternate ROUNDS times, so that
# a machine whose speed drifts drifts for both.
#
#   bench/redis/script-cpu.sh [OLD_REV [NEW_REV]]   (default: HEAD and the working tree)
#   N=20000 REQS=5 ROUNDS=3 bench/redis/script-cpu.sh 939848b
#
# Needs redis-server, redis-cli, redis-benchmark, perf and python3. The
# server's CPU time (task-clock) carries where wall-time figures do not:
# on a small shared VM the Go benchmarks' µs per call move by ±20%.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
old=${1:-HEAD}
new=${2:-}
n=${N:-20000}
reqs=${REQS:-5}
rounds=${ROUNDS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# lua REV OUT writes the admission script of REV ("" for the working tree)
# to OUT: ratelimit.LuaWindows + budget.LuaLeases + the body in
# governance/slotscript.go, as the binary builds it.
lua() {
	python3 - "$1" "$2" <<'PY'
import re, subprocess, sys
rev, out = sys.argv[1], sys.argv[2]
def src(path):
    if rev:
        return subprocess.run(["git", "show", f"{rev}:{path}"], check=True, capture_output=True, text=True).stdout
    return open(path).read()
def const(path, name):
    return re.search(r"const " + name + r" = `(.*?)`", src(path), re.S).group(1)
body = re.search(r"budget\.LuaLeases \+ `(.*?)`\)", src("internal/governance/slotscript.go"), re.S).group(1)
open(out, "w").write(const("internal/governance/ratelimit/redis.go", "LuaWindows") +
                     const("internal/governance/budget/redis.go", "LuaLeases") + body)
PY
}

# args prints the call's arguments, as queueSlots lays them out.
args() {
	python3 - "$reqs" <<'PY'
import datetime, sys
n = int(sys.argv[1])
utc = datetime.timezone.utc
now = datetime.datetime.now(utc)
month = datetime.datetime(now.year, now.month, 1, tzinfo=utc)
nextm = datetime.datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=utc)
day = datetime.datetime(now.year, now.month, now.day, tzinfo=utc)
us = lambda t: int(t.timestamp()) * 1_000_000
ms = lambda t: int(t.timestamp()) * 1000 + 86_400_000
a = [60_000_000, 1_000_000, 900_000_000, 15_000_000, 1, n]
for i in range(n):
    a += [3, 1, 1, 1_000_000_000, 1_000_000_000_000, 1, 1500, 1, 1500, 0, 2, 2,
          1, us(month), us(nextm), ms(nextm), 7_500_000, 7_500_000,
          2 + i, us(day), us(day + datetime.timedelta(days=1)), ms(day + datetime.timedelta(days=1)), 7_500_000, 7_500_000,
          1, 1_000_000_000_000_000, 0, 2, 1_000_000_000_000_000, 0]
print(" ".join(map(str, a)))
PY
}

# cpu FILE PORT prints redis-server's CPU µs per call of FILE's script.
cpu() {
	local f=$1 port=$2
	perf stat -e task-clock -x, -o "$work/stat" redis-server --port "$port" --save "" --appendonly no >/dev/null 2>&1 &
	for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
	local sha keys=("{b}:rl" "{b}:bg:global")
	sha=$(redis-cli -p "$port" script load "$(cat "$f")")
	for i in $(seq 0 $((reqs - 1))); do keys+=("{b}:bg:key$i"); done
	# shellcheck disable=SC2046
	reply=$(redis-cli -p "$port" evalsha "$sha" "${#keys[@]}" "${keys[@]}" $(args) | head -1)
	if [ "$reply" != 1 ]; then
		echo "the script did not admit: first reply $reply" >&2
		redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
		exit 1
	fi
	# shellcheck disable=SC2046
	redis-benchmark -p "$port" -n "$n" -c 1 -q evalsha "$sha" "${#keys[@]}" "${keys[@]}" $(args) >/dev/null 2>&1
	redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
	wait
	awk -F, -v n="$n" '/task-clock/ { printf "%.1f", $1 * 1000 / n }' "$work/stat"
}

lua "$old" "$work/old.lua"
lua "$new" "$work/new.lua"
echo "redis-server CPU per call of the admission script, $reqs requests a call, $n calls a run (µs)"
port=$((20000 + RANDOM % 20000))
for r in $(seq "$rounds"); do
	o=$(cpu "$work/old.lua" $((port++)))
	w=$(cpu "$work/new.lua" $((port++)))
	echo "round $r: ${old} $o   ${new:-working tree} $w"
done
