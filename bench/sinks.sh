#!/usr/bin/env bash
# Sink throughput from a backlog, one run, one sink at a time: EVENTS events (ONAP bodies spread
# over orders) are stored once; for each sink a copy of that store gets `replay --sink bench`
# (one pending delivery per event), then `serve` starts and the time until the sink's outbox is
# empty gives deliveries per second. Receivers: examples/ceiling (HTTP, answers 201), and the
# machine's NATS JetStream, RabbitMQ, Redis and Mosquitto; tansu (in memory) for Kafka.
# Writes a markdown table to stdout and to bench/results/<run>/sinks.md.
#
# Usage: bench/sinks.sh   (environment: EVENTS, SINKS, CONCURRENCY, and OL, CEILING, TOOL:
#                          prebuilt binaries; TANSU, and PYTHON with kafka-python and pika)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

EVENTS=${EVENTS:-100000}
SINKS=${SINKS:-"http nats amqp redis mqtt kafka"}
CONCURRENCY=${CONCURRENCY:-8}
RUN=bench/results/sinks-$(date -u +%Y%m%dT%H%M%SZ)
WORK=${BENCH_WORK:-/tmp/order-listener-sinks}
rm -rf "$WORK" && mkdir -p "$RUN" "$WORK"

release_binaries
TANSU=${TANSU:-$(command -v tansu || echo "$HOME/.cache/order-listener-ci/bin/tansu")}
PYTHON=${PYTHON:-target/ci-python/bin/python}


echo "== storing $EVENTS events"
"$TOOL" prefill --data-dir "$WORK/base" --events "$EVENTS" > /dev/null

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) × $(nproc)"
  echo "command: EVENTS=$EVENTS SINKS=\"$SINKS\" CONCURRENCY=$CONCURRENCY bench/sinks.sh"
} | tee "$RUN/machine.txt"

RESULTS="$RUN/sinks.md"
{
  echo "| sink | deliveries | seconds | deliveries/s |"
  echo "| --- | ---: | ---: | ---: |"
} > "$RESULTS"

HELPERS=()
cleanup() { for pid in "${HELPERS[@]}"; do kill "$pid" 2> /dev/null || true; done; }
trap cleanup EXIT

for sink in $SINKS; do
  dir="$WORK/$sink"
  cp -r "$WORK/base" "$dir"
  suffix=$(date +%s%N)
  case "$sink" in
    http)
      port=$(free_port)
      "$CEILING" "127.0.0.1:$port" > /dev/null 2>&1 &
      HELPERS+=($!)
      wait_for_port "$port"
      target="type = \"http\"
url = \"http://127.0.0.1:$port/hooks\"" ;;
    nats)
      target="type = \"nats\"
url = \"nats://127.0.0.1:4222\"
subject = \"bench$suffix.{orderId}\"
stream = \"BENCH$suffix\"" ;;
    amqp)
      # A queue bound to the exchange, so that every message is routed (an unroutable one is a
      # failure); deleted afterwards.
      "$PYTHON" - "bench$suffix" <<'PY'
import sys, pika
name = sys.argv[1]
channel = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2f")).channel()
channel.exchange_declare(name, "topic", durable=True)
channel.queue_declare(name, durable=True)
channel.queue_bind(name, name, "#")
PY
      target="type = \"amqp\"
url = \"amqp://guest:guest@127.0.0.1:5672/%2f\"
exchange = \"bench$suffix\"
routing_key = \"{orderId}\"
declare_exchange = true" ;;
    redis)
      target="type = \"redis\"
url = \"redis://127.0.0.1:6379\"
stream = \"bench$suffix\"" ;;
    mqtt)
      target="type = \"mqtt\"
url = \"mqtt://127.0.0.1:1883\"
topic = \"bench$suffix/{orderId}/events\"" ;;
    kafka)
      port=$(free_port)
      "$TANSU" broker --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine memory://tansu/ > /dev/null 2>&1 &
      HELPERS+=($!)
      wait_for_port "$port"
      "$PYTHON" - "$port" <<'PY'
import sys
from kafka.admin import KafkaAdminClient, NewTopic
admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{sys.argv[1]}")
admin.create_topics([NewTopic("bench", num_partitions=3, replication_factor=1)])
PY
      target="type = \"kafka\"
url = \"kafka://127.0.0.1:$port\"
topic = \"bench\"" ;;
    *) echo "unknown sink $sink" >&2; exit 1 ;;
  esac
  cat > "$dir/config.toml" <<TOML
[sinks.bench]
$target
concurrency = $CONCURRENCY
retry_schedule = ["100ms"]
TOML
  "$OL" replay --sink bench --config "$dir/config.toml" --data-dir "$dir" > /dev/null 2>&1
  admin=$(free_port)
  start=$(date +%s.%N)
  ORDER_LISTENER_ADMIN_TOKEN=bench "$OL" serve --plain-http --allow-anonymous \
    --listen 127.0.0.1:0 --admin-listen "127.0.0.1:$admin" \
    --config "$dir/config.toml" --data-dir "$dir" > "$dir/serve.log" 2>&1 &
  serve=$!
  while :; do
    pending=$(curl -s -H "Authorization: Bearer bench" "http://127.0.0.1:$admin/metrics" 2> /dev/null \
      | awk '/^order_listener_outbox_pending\{sink="bench"\}/ {print $2}')
    if [ -n "$pending" ] && [ "${pending%.*}" = 0 ]; then break; fi
    sleep 0.2
  done
  end=$(date +%s.%N)
  kill "$serve"; wait "$serve" 2> /dev/null || true
  dead=$("$OL" dead-letters list --sink bench --config "$dir/config.toml" --data-dir "$dir" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  seconds=$(python3 -c "print(f'{$end - $start:.1f}')")
  rate=$(python3 -c "print(f'{$EVENTS / ($end - $start):,.0f}')")
  echo "| $sink | $EVENTS (dead: $dead) | $seconds | $rate |" | tee -a "$RESULTS"
  if [ "$sink" = amqp ]; then
    "$PYTHON" -c "import pika; c = pika.BlockingConnection(pika.URLParameters('amqp://guest:guest@127.0.0.1:5672/%2f')).channel(); c.queue_delete('bench$suffix'); c.exchange_delete('bench$suffix')"
  fi
  rm -rf "$dir"
done
cat "$RESULTS"
