#!/usr/bin/env bash
# The benchmark: in one run on one machine, measures side by side
#   ceiling      a minimal hyper server that echoes 201 without parsing or storing,
#   sqlite       order-listener on its embedded SQLite store (every 201 fsynced),
#   baseline     a Fastify endpoint inserting one row per request with better-sqlite3@12,
#   sqlite-1M, sqlite-10M   order-listener with 1M and 10M events already stored,
#   postgres     order-listener on PostgreSQL (a fresh database on POSTGRES_ADMIN_URL's server),
# each under the open-loop load generator (`order-listener simulate --rate --duration`),
# then writes the tables to bench/results/<run>/report.md and the plot to bench/latency.svg.
#
# Usage: bench/run.sh            (environment: RATES, DURATION, CONNECTIONS, VOLUMES, TARGETS,
#                                 POSTGRES_ADMIN_URL, REUSE_VOLUME, and OL, CEILING, TOOL:
#                                 prebuilt binaries, which skip the build)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

RATES=${RATES:-"1000 2000 3000 4000 5000 6000 7000 8000 10000 12000 15000 20000 25000 30000 40000"}
WARMUP=${WARMUP:-5s}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
VOLUMES=${VOLUMES-"1000000 10000000"}
TARGETS=${TARGETS:-"ceiling sqlite baseline volumes postgres"}
POSTGRES_ADMIN_URL=${POSTGRES_ADMIN_URL:-"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"}
wants() { [[ " $TARGETS " == *" $1 "* ]]; }
RUN=bench/results/$(date -u +%Y%m%dT%H%M%SZ)
WORK=${BENCH_WORK:-/tmp/order-listener-bench}
mkdir -p "$RUN" "$WORK"

release_binaries
(cd bench/baseline && npm install --no-audit --no-fund --silent)

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) × $(nproc)"
  echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "kernel: $(uname -r)"
  echo "rustc: $(rustc --version)"
  echo "node: $(node --version)"
  echo "command: RATES=\"$RATES\" DURATION=$DURATION WARMUP=$WARMUP CONNECTIONS=$CONNECTIONS VOLUMES=\"$VOLUMES\" TARGETS=\"$TARGETS\" bench/run.sh"
} > "$RUN/machine.txt"
cat "$RUN/machine.txt"


# sweep NAME URL PID: a warm-up at 1000/s (not recorded: it opens connections and fills
# caches), then every rate in turn; past 5000/s, stop after the first rate whose p99 reaches
# 50 ms or that loses requests.
sweep() {
  local name=$1 url=$2 pid=$3
  mkdir -p "$RUN/$name"
  "$OL" simulate --target "$url" --rate 1000 --duration "$WARMUP" --connections "$CONNECTIONS" --json > /dev/null
  for rate in $RATES; do
    "$OL" simulate --target "$url" --rate "$rate" --duration "$DURATION" --connections "$CONNECTIONS" --json \
      > "$RUN/$name/rate-$rate.json"
    local verdict
    verdict=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("ok" if r["latency_ms"]["p99"] < 50 and r["created"] >= 0.999 * r["sent"] else "over")' "$RUN/$name/rate-$rate.json")
    echo "   $name @ $rate/s: $verdict ($(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%.0f/s, p99 %.2f ms" % (r["throughput"], r["latency_ms"]["p99"]))' "$RUN/$name/rate-$rate.json"))"
    if [ "$verdict" = over ] && [ "$rate" -ge 5000 ]; then break; fi
  done
  grep VmHWM "/proc/$pid/status" > "$RUN/$name/rss.txt"
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

if wants ceiling; then
echo "== ceiling"
target/release/examples/ceiling 127.0.0.1:18443 > /dev/null &
pid=$!; wait_for_port 18443
sweep ceiling http://127.0.0.1:18443/externalapi/listener/v1/listener $pid
stop $pid
fi

if wants sqlite; then
echo "== order-listener, SQLite, empty store"
rm -rf "$WORK/sqlite"
ORDER_LISTENER_ADMIN_TOKEN=bench "$OL" serve --plain-http --allow-anonymous --data-dir "$WORK/sqlite" \
  --listen 127.0.0.1:18445 --admin-listen 127.0.0.1:19445 > /dev/null 2>&1 &
pid=$!; wait_for_port 18445
sweep sqlite http://127.0.0.1:18445/externalapi/listener/v1/listener $pid
"$TOOL" query --admin http://127.0.0.1:19445 --token bench --data-dir "$WORK/sqlite" > "$RUN/sqlite/query.json"
stop $pid
fi

if wants baseline; then
echo "== baseline: Fastify + better-sqlite3"
rm -f "$WORK/baseline.sqlite3"*
node bench/baseline/server.js 18444 "$WORK/baseline.sqlite3" > /dev/null &
pid=$!; wait_for_port 18444
sweep baseline http://127.0.0.1:18444/externalapi/listener/v1/listener $pid
stop $pid
fi

if wants postgres; then
echo "== order-listener, PostgreSQL, empty database"
db="order_listener_bench_$(date +%s)"
psql "$POSTGRES_ADMIN_URL" -q -c "CREATE DATABASE $db"
pg_url=$(python3 -c 'import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p._replace(path="/"+sys.argv[2]).geturl())' "$POSTGRES_ADMIN_URL" "$db")
ORDER_LISTENER_ADMIN_TOKEN=bench "$OL" serve --plain-http --allow-anonymous --data-dir "$WORK/pg" \
  --database-url "$pg_url" --listen 127.0.0.1:18447 --admin-listen 127.0.0.1:19447 > /dev/null 2>&1 &
pid=$!; wait_for_port 18447
sweep postgres http://127.0.0.1:18447/externalapi/listener/v1/listener $pid
stop $pid
psql "$POSTGRES_ADMIN_URL" -q -c "DROP DATABASE $db WITH (FORCE)"
fi

if wants volumes; then
echo "== order-listener, SQLite, with events already stored"
# REUSE_VOLUME=1 keeps a store an earlier run filled to the first of VOLUMES (filling 10M
# events takes some 20 minutes and 19 GB).
stored=0
if [ "${REUSE_VOLUME:-0}" = 1 ] && [ -f "$WORK/volume/events.sqlite3" ]; then
  stored=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM events").fetchone()[0])' "$WORK/volume/events.sqlite3")
  echo "   reusing $WORK/volume with $stored events"
else
  rm -rf "$WORK/volume"
fi
for volume in $VOLUMES; do
  if [ "$stored" -lt "$volume" ]; then
    echo "   filling to $volume events"
    "$TOOL" prefill --data-dir "$WORK/volume" --events $((volume - stored)) --from $stored
  fi
  stored=$volume
  # Let the kernel write the fill back before measuring, so that its writeback does not
  # compete with the listener's fsyncs.
  sync
  name="sqlite-$((volume / 1000000))M"
  ORDER_LISTENER_ADMIN_TOKEN=bench "$OL" serve --plain-http --allow-anonymous --data-dir "$WORK/volume" \
    --listen 127.0.0.1:18446 --admin-listen 127.0.0.1:19446 > /dev/null 2>&1 &
  pid=$!; wait_for_port 18446
  sweep "$name" http://127.0.0.1:18446/externalapi/listener/v1/listener $pid
  "$TOOL" query --admin http://127.0.0.1:19446 --token bench --data-dir "$WORK/volume" > "$RUN/$name/query.json"
  stop $pid
done
du -sh "$WORK/volume" > "$RUN/volume-size.txt"
fi

echo "== report"
"$TOOL" report --results "$RUN" --plot "${PLOT:-bench/latency.svg}" | tee "$RUN/report.md"
echo "results in $RUN; plot in ${PLOT:-bench/latency.svg}"
