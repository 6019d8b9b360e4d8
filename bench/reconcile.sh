#!/usr/bin/env bash
# Issue 14: the seller API being slow or down must never slow the Listener API. In one run,
# alternating, `simulate --rate RATE --duration DURATION` (ONAP bodies) against `serve` with a
# seller API and reconciliation sweeping every 100 ms with every non-final order stale at once
# (so that the sweep always has suspects to check), where the seller API is either
#   healthy   answers every GET at once (404: the listener then counts not_found), or
#   hanging   accepts the connection and never answers (each check waits for its timeout).
# Prints p50/p99 per run and the ratio of the hanging p99 to the healthy p99; writes
# bench/results/<run>/reconcile.md.
#
# Usage: bench/reconcile.sh   (environment: RATE, DURATION, ROUNDS, and OL: a prebuilt binary)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

RATE=${RATE:-500}
DURATION=${DURATION:-20s}
ROUNDS=${ROUNDS:-2}
RUN=bench/results/reconcile-$(date -u +%Y%m%dT%H%M%SZ)
WORK=${BENCH_WORK:-/tmp/order-listener-reconcile}
rm -rf "$WORK" && mkdir -p "$RUN" "$WORK"
if [ -z "${OL:-}" ]; then
  cargo build --release --quiet --bin order-listener
fi
OL=${OL:-target/release/order-listener}

# The seller API: healthy answers 404 at once; hanging reads the request and never answers.
seller() {
  python3 - "$1" "$2" <<'PY' &
import socket, sys, threading
port, mode = int(sys.argv[1]), sys.argv[2]
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen(1024)
held = []
def serve(conn):
    while True:
        try:
            data = conn.recv(65536)
        except OSError:
            return
        if not data:
            return
        if mode == "healthy":
            conn.sendall(b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}")
        else:
            held.append(conn)
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
PY
  SELLER=$!
}

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD)"
  echo "command: RATE=$RATE DURATION=$DURATION ROUNDS=$ROUNDS bench/reconcile.sh"
} | tee "$RUN/machine.txt"
RESULTS="$RUN/reconcile.md"
{
  echo "| round | seller API | achieved/s | p50 ms | p99 ms | checks (outcome: count) |"
  echo "| --- | --- | ---: | ---: | ---: | --- |"
} > "$RESULTS"

declare -A P99
for round in $(seq 1 "$ROUNDS"); do
  for mode in healthy hanging; do
    dir="$WORK/$mode-$round"
    mkdir -p "$dir"
    seller_port=$(free_port)
    seller "$seller_port" "$mode"
    wait_for_port "$seller_port"
    cat > "$dir/config.toml" <<TOML
[seller_apis.seller]
base_url = "http://127.0.0.1:$seller_port/nbi/api/v4"
dialects = ["onap"]
timeout_seconds = 2
[reconcile]
sweep_every = "100ms"
requests_per_minute = 60000
recheck_after = "1s"
[reconcile.stale_after]
acknowledged = "1ms"
pending = "1ms"
held = "1ms"
inProgress = "1ms"
assessingCancellation = "1ms"
pendingCancellation = "1ms"
TOML
    public=$(free_port)
    admin=$(free_port)
    ORDER_LISTENER_ADMIN_TOKEN=bench "$OL" serve --plain-http --allow-anonymous \
      --listen "127.0.0.1:$public" --admin-listen "127.0.0.1:$admin" \
      --config "$dir/config.toml" --data-dir "$dir" > "$dir/serve.log" 2>&1 &
    serve=$!
    wait_for_port "$public"
    "$OL" simulate --target "http://127.0.0.1:$public/externalapi/listener/v1/listener" \
      --rate "$RATE" --duration "$DURATION" --json > "$dir/load.json" 2> /dev/null
    checks=$(curl -s "http://127.0.0.1:$admin/metrics" \
      | awk -F'[{}]' '/^order_listener_reconcile_checks_total/ {split($2, l, "outcome=\""); sub(/".*/, "", l[2]); split($3, v, " "); printf "%s: %s, ", l[2], v[1]}')
    kill "$serve" "$SELLER"; wait "$serve" "$SELLER" 2> /dev/null || true
    read -r achieved p50 p99 < <(python3 -c "import json; r=json.load(open('$dir/load.json')); print(round(r['throughput']), r['latency_ms']['p50'], r['latency_ms']['p99'])")
    P99[$mode]="${P99[$mode]:-} $p99"
    echo "| $round | $mode | $achieved | $p50 | $p99 | ${checks%, } |" | tee -a "$RESULTS"
  done
done
python3 - "${P99[healthy]}" "${P99[hanging]}" <<'PY' | tee -a "$RESULTS"
import sys, statistics
healthy = [float(x) for x in sys.argv[1].split()]
hanging = [float(x) for x in sys.argv[2].split()]
h, g = statistics.median(healthy), statistics.median(hanging)
print(f"\nmedian p99: healthy {h:.2f} ms, hanging {g:.2f} ms: {g / h:.2f}×")
PY
