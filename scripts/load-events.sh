#!/usr/bin/env bash
# Measures webhooks and live events (benches/events.rs), on SQLite and PostgreSQL, with the server pinned to
# core 0 and the generator (and its webhook receiver) to core 1:
#   webhook deliveries per second (10,000 dead letters put back at once), packet event → WebSocket frame
#   latency at 500 events/s, server RSS with 1,000 idle WebSocket connections, and lifecycles per second at
#   concurrency 50 without and with one active webhook.
#
#   scripts/load-events.sh [SECONDS]     (BACKENDS="sqlite postgres"; MODES="deliveries latency idle lifecycle"; PostgreSQL from HANDOFFRAIL_BENCH_POSTGRES_URL,
#                                         default postgres://postgres@127.0.0.1:5432)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
pg_server=${HANDOFFRAIL_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
backends=${BACKENDS:-sqlite postgres}

cargo build --release --quiet
cargo bench --bench events --no-run --quiet 2>/dev/null
generator=$(ls -t target/release/deps/events-* | grep -v '\.d$' | head -1)
key=$(python3 -c 'import base64, secrets; print("hr_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("="))')
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

rss() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }

for backend in $backends; do
  for mode in ${MODES:-deliveries latency idle lifecycle}; do
    data_dir=$(mktemp -d)
    url="sqlite://$data_dir/handoffrail.db"
    if [ "$backend" = postgres ]; then
      psql "$pg_server/postgres" -qc 'DROP DATABASE IF EXISTS handoffrail_bench' -c 'CREATE DATABASE handoffrail_bench' 2>/dev/null
      url="$pg_server/handoffrail_bench"
    fi
    port=$(free_port)
    HANDOFFRAIL_ADMIN_KEY=$key HANDOFFRAIL_LOG=warn taskset -c 0 target/release/handoffrail serve --no-proxy \
      --port "$port" --data-dir "$data_dir" --database-url "$url" --no-rate-limits \
      --allowed-webhook-hosts 127.0.0.1 --webhook-retry-schedule '' --live-connections free=1,pro=5,business=5000 \
      >"$data_dir/server.log" 2>&1 &
    server=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done
    printf '# %s %s\n' "$backend" "$mode"
    if [ "$mode" = idle ]; then
      before=$(rss "$server")
      coproc loader { taskset -c 1 "$generator" --url "http://127.0.0.1:$port" --api-key "$key" --mode idle; }
      read -r line <&"${loader[0]}"
      echo "$line"
      after=$(rss "$server")
      echo "| RSS, 1,000 idle WebSocket connections | idle $before KiB | with them $after KiB | +$(( (after - before) / 1024 )) MiB |"
      echo >&"${loader[1]}"
      wait "$loader_PID" || true
    else
      taskset -c 1 "$generator" --url "http://127.0.0.1:$port" --api-key "$key" --mode "$mode" --seconds "$seconds"
    fi
    kill "$server"; wait "$server" 2>/dev/null || true
    grep -iE 'panicked|error' "$data_dir/server.log" | tail -n 3 || true
    rm -rf "$data_dir"
  done
done
if [[ " $backends " == *" postgres "* ]]; then
  psql "$pg_server/postgres" -qc 'DROP DATABASE IF EXISTS handoffrail_bench' 2>/dev/null
fi
