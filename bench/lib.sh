# Shared by the benchmark scripts (sourced, never run): the release binaries and waiting for a
# server's port.

# release_binaries: sets OL, CEILING and TOOL, building them (release) unless all three are
# given as prebuilt binaries.
release_binaries() {
  if [ -z "${OL:-}" ] || [ -z "${CEILING:-}" ] || [ -z "${TOOL:-}" ]; then
    echo "== building (release)"
    cargo build --release --quiet --bin order-listener --example ceiling --example bench_tool
  fi
  OL=${OL:-target/release/order-listener}
  CEILING=${CEILING:-target/release/examples/ceiling}
  TOOL=${TOOL:-target/release/examples/bench_tool}
}

# wait_for_port PORT: until something listens on 127.0.0.1:PORT (at most 20 s).
wait_for_port() {
  for _ in $(seq 1 400); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listens on $1" >&2
  return 1
}

# free_port: a TCP port nothing listens on now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
