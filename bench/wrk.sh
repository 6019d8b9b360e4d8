#!/usr/bin/env bash
# The closed-loop benchmark, beside bench/run.sh's open-loop sweep: in one run on one machine,
# `wrk -t2 -c64 --latency` with bench/wrk/events.lua against, side by side,
#   ceiling    examples/ceiling.rs, hyper answering 201 without parsing or storing,
#   sqlite     order-listener on a fresh SQLite store (every 201 fsynced), once per workload,
#   postgres   order-listener on a fresh PostgreSQL database, once per workload (if in TARGETS),
#   stub       order-listener built with bench/stub-store.patch, whose store answers every append
#              at once and stores nothing: the request path alone (STUB names a prebuilt one;
#              otherwise it is built into target/stub), spread workload only (if in TARGETS),
#   floor      examples/store_floor.rs: SQLite alone, one thread, minimal schemas, no HTTP: the
#              least CPU a durable SQLite append costs (if in TARGETS),
#   volume     order-listener on a SQLite store already holding VOLUME events (10 million by
#              default; filled by `bench_tool prefill` into VOLUME_DIR unless it is there from an
#              earlier run), spread workload only (if in TARGETS),
# where the workloads are `spread` (events over 100,000 orders) and `one` (every event on one
# order); then `bench_tool order-cost`, the cost of an append as one order grows. Writes the
# tables to stdout and to bench/results/<run>/wrk.md; exits 1 if any answer was not 2xx.
#
# Usage: bench/wrk.sh   (environment: DURATION, WARMUP, THREADS, CONNECTIONS, WORKLOADS, TARGETS,
#                        ORDER_SIZES, ORDER_WINDOW, ORDER_COST_TIMEOUT, POSTGRES_ADMIN_URL,
#                        VOLUME, VOLUME_DIR,
#                        and OL, CEILING, TOOL: prebuilt binaries, which skip the build)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
WORKLOADS=${WORKLOADS:-"spread one"}
TARGETS=${TARGETS:-"ceiling sqlite order-cost"}
ORDER_SIZES=${ORDER_SIZES:-"1000,10000,100000"}
ORDER_WINDOW=${ORDER_WINDOW:-2000}
ORDER_COST_TIMEOUT=${ORDER_COST_TIMEOUT:-900}
POSTGRES_ADMIN_URL=${POSTGRES_ADMIN_URL:-"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"}
wants() { [[ " $TARGETS " == *" $1 "* ]]; }
RUN=bench/results/wrk-$(date -u +%Y%m%dT%H%M%SZ)
WORK=${BENCH_WORK:-/tmp/order-listener-wrk}
VOLUME=${VOLUME:-10000000}
# The same place as bench/run.sh's filled store, so that one fill serves both.
VOLUME_DIR=${VOLUME_DIR:-/tmp/order-listener-bench/volume}
SCRIPT=bench/wrk/events.lua
mkdir -p "$RUN" "$WORK"
command -v wrk > /dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

release_binaries

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD)"
  echo "binaries: $OL, $CEILING, $TOOL"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) × $(nproc)"
  echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "kernel: $(uname -r)"
  echo "wrk: $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
  echo "command: DURATION=$DURATION WARMUP=$WARMUP THREADS=$THREADS CONNECTIONS=$CONNECTIONS WORKLOADS=\"$WORKLOADS\" TARGETS=\"$TARGETS\" ORDER_SIZES=$ORDER_SIZES ORDER_WINDOW=$ORDER_WINDOW bench/wrk.sh"
} > "$RUN/machine.txt"
cat "$RUN/machine.txt"


# CPU seconds (user + system) a process has used so far.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"
}

# Busy CPU seconds of the whole machine so far.
machine_busy_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat
}

# load NAME URL PID MODE: a warm-up (not recorded), then the measured run, whose wrk summary,
# CPU use and the server's peak RSS go to $RUN/NAME.*.
load() {
  local name=$1 url=$2 pid=$3 mode=$4
  MODE=$mode wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" --timeout 30s -s "$SCRIPT" "$url" > /dev/null
  local before after busy_before busy_after
  before=$(cpu_seconds "$pid")
  busy_before=$(machine_busy_seconds)
  TIMEFORMAT='%R %U %S'
  { time MODE=$mode wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 30s --latency \
      -s "$SCRIPT" "$url" > "$RUN/$name.wrk.txt"; } 2> "$RUN/$name.time.txt"
  after=$(cpu_seconds "$pid")
  busy_after=$(machine_busy_seconds)
  grep '^WRK_JSON ' "$RUN/$name.wrk.txt" | cut -d' ' -f2- > "$RUN/$name.json"
  awk '/VmHWM/ {print $2}' "/proc/$pid/status" > "$RUN/$name.rss-kib"
  read -r real user sys < "$RUN/$name.time.txt"
  python3 - "$RUN/$name.json" "$real" "$user" "$sys" "$before" "$after" "$busy_before" "$busy_after" <<'EOF'
import json, sys
path, real, user, system, before, after, busy_before, busy_after = sys.argv[1], *map(float, sys.argv[2:])
result = json.load(open(path))
result["wrk_cores"] = (user + system) / real
result["server_cores"] = (after - before) / real
# Everything else the machine did meanwhile: PostgreSQL, and any other job (noise).
result["other_cores"] = max(0.0, (busy_after - busy_before) / real - result["wrk_cores"] - result["server_cores"])
json.dump(result, open(path, "w"))
EOF
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("   %s: %.0f req/s, p50 %.2f ms, p99 %.2f ms, non-2xx %d, CPU: wrk %.2f, server %.2f, other %.2f cores" % (sys.argv[2], r["requests_per_second"], r["latency_ms"]["p50"], r["latency_ms"]["p99"], r["non_2xx"], r["wrk_cores"], r["server_cores"], r["other_cores"]))' "$RUN/$name.json" "$name"
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; pid=""; }

# A failed step leaves neither a server running nor a database behind.
pid="" pg_db=""
cleanup() {
  if [ -n "$pid" ]; then stop "$pid"; fi
  if [ -n "$pg_db" ]; then drop_database; fi
}
trap cleanup EXIT

url_path=/externalapi/listener/v1/listener

# run_listener NAME BINARY DATA_DIR PORT MODE [ARGS...]: `serve` on DATA_DIR at 127.0.0.1:PORT
# (admin API at PORT + 1000, ARGS added), loaded with MODE under NAME, then stopped.
run_listener() {
  local name=$1 binary=$2 data=$3 port=$4 mode=$5
  shift 5
  ORDER_LISTENER_ADMIN_TOKEN=bench "$binary" serve --plain-http --allow-anonymous \
    --data-dir "$data" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$((port + 1000))" \
    "$@" > "$RUN/$name.log" 2>&1 &
  pid=$!; wait_for_port "$port"
  load "$name" "http://127.0.0.1:$port$url_path" $pid "$mode"
  stop $pid
}

if wants ceiling; then
  echo "== ceiling"
  "$CEILING" 127.0.0.1:18543 > /dev/null &
  pid=$!; wait_for_port 18543
  load ceiling "http://127.0.0.1:18543$url_path" $pid spread
  stop $pid
fi

if wants sqlite; then
  for mode in $WORKLOADS; do
    echo "== order-listener, SQLite, fresh store, $mode"
    rm -rf "$WORK/sqlite-$mode"
    run_listener "sqlite-$mode" "$OL" "$WORK/sqlite-$mode" 18545 "$mode"
    rm -rf "$WORK/sqlite-$mode"
  done
fi

if wants stub; then
  if [ -z "${STUB:-}" ]; then
    echo "== building the stub (bench/stub-store.patch applied to HEAD, into target/stub)"
    tree=$(mktemp -d)
    git worktree add -q --detach "$tree" HEAD
    git -C "$tree" apply "$PWD/bench/stub-store.patch"
    CARGO_TARGET_DIR=$PWD/target/stub cargo build --release --quiet \
      --manifest-path "$tree/Cargo.toml" --bin order-listener
    git worktree remove --force "$tree"
    STUB=target/stub/release/order-listener
  fi
  echo "== order-listener with its store stubbed (the request path alone), spread"
  rm -rf "$WORK/stub"
  run_listener stub-spread "$STUB" "$WORK/stub" 18551 spread
  rm -rf "$WORK/stub"
fi

if wants floor; then
  echo "== the floor: SQLite alone, one thread, minimal schemas (examples/store_floor.rs)"
  if [ -z "${FLOOR:-}" ]; then
    cargo build --release --quiet --example store_floor
    FLOOR=target/release/examples/store_floor
  fi
  "$FLOOR" "$WORK/floor" "${FLOOR_EVENTS:-200000}" 64 | tee "$RUN/floor.md"
  rm -rf "$WORK/floor"
fi

if wants volume; then
  echo "== order-listener, SQLite, a store holding $VOLUME events, spread"
  stored=0
  if [ -f "$VOLUME_DIR/events.sqlite3" ]; then
    stored=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT MAX(sequence) FROM events").fetchone()[0] or 0)' "$VOLUME_DIR/events.sqlite3")
    echo "   $VOLUME_DIR holds $stored events"
  fi
  if [ "$stored" -lt "$VOLUME" ]; then
    echo "   filling to $VOLUME events (10 million take some 15 minutes and 19 GB)"
    "$TOOL" prefill --data-dir "$VOLUME_DIR" --events $((VOLUME - stored)) --from "$stored"
  fi
  # The fill's writeback must not compete with the listener's fsyncs.
  sync
  run_listener volume-spread "$OL" "$VOLUME_DIR" 18549 spread
fi

# fresh_database: creates an empty database on POSTGRES_ADMIN_URL's server and sets pg_db and
# pg_url to its name and URL.
fresh_database() {
  pg_db="order_listener_wrk_$(date +%s)_$RANDOM"
  psql "$POSTGRES_ADMIN_URL" -q -c "CREATE DATABASE $pg_db"
  pg_url=$(python3 -c 'import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p._replace(path="/"+sys.argv[2]).geturl())' "$POSTGRES_ADMIN_URL" "$pg_db")
}
drop_database() { psql "$POSTGRES_ADMIN_URL" -q -c "DROP DATABASE $pg_db WITH (FORCE)"; pg_db=""; }

if wants postgres; then
  for mode in $WORKLOADS; do
    echo "== order-listener, PostgreSQL, fresh database, $mode"
    fresh_database
    rm -rf "$WORK/pg-$mode"
    run_listener "postgres-$mode" "$OL" "$WORK/pg-$mode" 18547 "$mode" --database-url "$pg_url"
    drop_database
    rm -rf "$WORK/pg-$mode"
  done
fi

# order_cost NAME [ARGS...]: bench_tool order-cost under a timeout; rows print as windows end,
# so a run cut short keeps the rows it finished.
order_cost() {
  local name=$1; shift
  local status=0
  timeout "$ORDER_COST_TIMEOUT" "$TOOL" order-cost --sizes "$ORDER_SIZES" --window "$ORDER_WINDOW" "$@" \
    > "$RUN/$name.md" || status=$?
  if [ "$status" = 124 ]; then
    echo "(stopped by the ${ORDER_COST_TIMEOUT} s timeout before the remaining sizes)" >> "$RUN/$name.md"
  elif [ "$status" != 0 ]; then
    echo "(bench_tool order-cost failed with status $status)" >> "$RUN/$name.md"
  fi
  cat "$RUN/$name.md"
}

if wants order-cost; then
  echo "== cost per append as one order grows, SQLite (sizes $ORDER_SIZES)"
  rm -rf "$WORK/order-cost"
  order_cost order-cost-sqlite --data-dir "$WORK/order-cost"
  rm -rf "$WORK/order-cost"
  if wants postgres; then
    echo "== cost per append as one order grows, PostgreSQL (sizes $ORDER_SIZES)"
    fresh_database
    order_cost order-cost-postgres --data-dir "$WORK/order-cost" --database-url "$pg_url"
    drop_database
  fi
fi

echo "== report"
status=0
python3 - "$RUN" "$ORDER_SIZES" <<'EOF' | tee "$RUN/wrk.md" || status=$?
import glob, json, os, re, sys

run = sys.argv[1]
machine = open(os.path.join(run, "machine.txt")).read().strip()
results = {}
for path in sorted(glob.glob(os.path.join(run, "*.json"))):
    name = os.path.basename(path)[: -len(".json")]
    results[name] = json.load(open(path))
    with open(os.path.join(run, name + ".rss-kib")) as rss:
        results[name]["rss_mib"] = int(rss.read().strip() or 0) / 1024

def rate(name):
    return results[name]["requests_per_second"] if name in results else None

ceiling = rate("ceiling")
print("```\n" + machine + "\n```\n")
print("| target | workload | req/s | p50 ms | p99 ms | vs ceiling | non-2xx | socket errors | CPU wrk / server / other | peak RSS |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
order = ["ceiling"] + [f"{b}-{w}" for b in ("sqlite", "postgres") for w in ("spread", "one")] + ["volume-spread", "stub-spread"]
for name in order + sorted(set(results) - set(order)):
    if name not in results:
        continue
    r = results[name]
    target, _, workload = name.partition("-")
    errors = sum(r["socket_errors"].values())
    vs = f"{r['requests_per_second'] / ceiling:.2f}×" if ceiling else "–"
    print(f"| {target} | {workload or 'spread'} | {r['requests_per_second']:.0f} | {r['latency_ms']['p50']:.2f} "
          f"| {r['latency_ms']['p99']:.2f} | {vs} | {r['non_2xx']} | {errors} "
          f"| {r['wrk_cores']:.2f} / {r['server_cores']:.2f} / {r['other_cores']:.2f} | {r['rss_mib']:.1f} MiB |")
print(f"\nCPU is in cores (of {os.cpu_count()}) over the measured run; other is the rest of the machine: "
      "PostgreSQL's processes, and any other job (then the run is noisy).")

costs = {}
for backend in ("sqlite", "postgres"):
    path = os.path.join(run, f"order-cost-{backend}.md")
    if os.path.exists(path):
        text = open(path).read().strip()
        print(f"\nCost per append as one order grows ({backend}; 64 appends in flight, all to one order):\n")
        print(text)
        costs[backend] = [float(m.group(1)) for m in re.finditer(r"^\|[^|]+\|[^|]+\| ([0-9.]+) \|", text, re.M)]

floor_path = os.path.join(run, "floor.md")
if os.path.exists(floor_path):
    print("\nThe floor: SQLite alone (examples/store_floor.rs), one thread, 64 events per fsynced commit, no HTTP:\n")
    print(open(floor_path).read().strip())
if ceiling and "stub-spread" in results:
    # What 0.3x of the ceiling leaves per event: the machine's cores at that rate, less wrk's
    # CPU per request (as in the ceiling run) and the stubbed listener's (the request path).
    target = 0.3 * ceiling
    budget = os.cpu_count() / target * 1e6
    wrk_us = results["ceiling"]["wrk_cores"] / ceiling * 1e6
    stub = results["stub-spread"]
    request_us = stub["server_cores"] / stub["requests_per_second"] * 1e6
    print(f"\nAt 0.3× the ceiling ({target:,.0f}/s) the machine has {budget:.1f} µs of CPU per event; wrk takes "
          f"{wrk_us:.1f} µs per request (ceiling run) and the listener's request path {request_us:.1f} µs "
          f"(stub run), which leaves **{budget - wrk_us - request_us:.1f} µs per event for the store**, "
          "fsync and checkpoints included (compare the floor's CPU µs per event).")

checks = []
def check(what, ratio, floor=None, ceiling_=None):
    if ratio is None:
        checks.append((what, "not measured", "–"))
    else:
        met = (floor is None or ratio >= floor) and (ceiling_ is None or ratio <= ceiling_)
        checks.append((what, f"{ratio:.2f}×", "yes" if met else "**no**"))
ratio = lambda a, b: a / b if a is not None and b else None
check("sqlite spread ≥ 0.3× ceiling", ratio(rate("sqlite-spread"), ceiling), floor=0.3)
check("sqlite one ≥ 0.9× sqlite spread", ratio(rate("sqlite-one"), rate("sqlite-spread")), floor=0.9)
cost = costs.get("sqlite", [])
sizes = sys.argv[2].split(",")
check(f"append cost at {sizes[-1]} events ≤ 1.5× at {sizes[0]}",
      ratio(cost[-1], cost[0]) if len(cost) == len(sizes) and cost else None, ceiling_=1.5)
if "volume-spread" in results:
    check("sqlite spread with the store full ≥ 0.9× fresh", ratio(rate("volume-spread"), rate("sqlite-spread")), floor=0.9)
if "postgres-spread" in results:
    check("postgres spread ≥ 0.5× sqlite spread", ratio(rate("postgres-spread"), rate("sqlite-spread")), floor=0.5)
print("\n| issue 11 target | measured | met |\n| --- | ---: | --- |")
for what, measured, met in checks:
    print(f"| {what} | {measured} | {met} |")

failed = [name for name, r in results.items() if r["non_2xx"] > 0]
if failed:
    print(f"\nFAILED: answers that were not 2xx from {', '.join(failed)}")
    sys.exit(1)
EOF
echo "results in $RUN"
exit $status
