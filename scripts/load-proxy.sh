#!/usr/bin/env bash
# Measures the interceptor: an in-process upstream answering a 1.8 KB JSON document, called directly and through
# the proxy with recording on, at fixed rates (open loop) and at concurrency 1/10/50/100 (closed loop, up to
# saturation), on SQLite and on PostgreSQL, then concurrency 1 and 500 req/s again with the upstream moved to the
# server's core. The server is pinned to core 0 and the load generator (with its
# upstream) to core 1, as the DESIGN.md budgets assume. After each backend the script checks that every proxied
# request left exactly one record.
#
#   scripts/load-proxy.sh [SECONDS_PER_LEVEL]     (PostgreSQL from HANDOFFRAIL_BENCH_POSTGRES_URL,
#                                                  default postgres://postgres@127.0.0.1:5432;
#                                                  RATES="500 2000 5000", CONCURRENCY="1,10,50,100",
#                                                  BACKENDS="sqlite postgres",
#                                                  BINARY=path/to/another/handoffrail to measure that build
#                                                  with the same generator, side by side with this one)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
pg_server=${HANDOFFRAIL_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
rates=${RATES:-500 2000 5000}
concurrency=${CONCURRENCY:-1,10,50,100}
backends=${BACKENDS:-sqlite postgres}

cargo build --release --quiet
cargo bench --bench proxy --no-run --quiet 2>/dev/null
binary=${BINARY:-target/release/handoffrail}
generator=$(ls -t target/release/deps/proxy-* | grep -v '\.d$' | head -1)
key=$(python3 -c 'import base64, secrets; print("hr_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("="))')
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

for backend in $backends; do
  data_dir=$(mktemp -d)
  url="sqlite://$data_dir/handoffrail.db"
  if [ "$backend" = postgres ]; then
    psql "$pg_server/postgres" -qc 'DROP DATABASE IF EXISTS handoffrail_bench' -c 'CREATE DATABASE handoffrail_bench' 2>/dev/null
    url="$pg_server/handoffrail_bench"
  fi
  api_port=$(free_port)
  proxy_port=$(free_port)
  HANDOFFRAIL_ADMIN_KEY=$key HANDOFFRAIL_LOG=warn taskset -c 0 "$binary" serve \
    --port "$api_port" --proxy-port "$proxy_port" --data-dir "$data_dir" --database-url "$url" \
    >"$data_dir/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$api_port/ready" >/dev/null && break; sleep 0.1; done
  echo "# $backend: idle RSS $(ps -o rss= -p "$server" | tr -d ' ') KiB"
  taskset -c 1 "$generator" --proxy "127.0.0.1:$proxy_port" --api-key "$key" --seconds "$seconds" \
    --concurrency "$concurrency" --rates "$(echo "$rates" | tr ' ' ',')" --label "proxy, $backend" | tee "$data_dir/results"
  # The same latency levels with the upstream on the server's core: direct calls then cross cores as proxied
  # ones do, so the difference is what the proxy itself adds rather than two extra core-to-core hops.
  taskset -c 1 "$generator" --proxy "127.0.0.1:$proxy_port" --api-key "$key" --seconds "$seconds" \
    --concurrency 1 --rates 500 --upstream-cpu 0 --label "proxy, $backend, upstream on core 0" | tee -a "$data_dir/results"
  echo "# $backend: RSS after load $(ps -o rss= -p "$server" | tr -d ' ') KiB"
  kill "$server"; wait "$server" 2>/dev/null || true
  # Shutdown flushes the recorder: every proxied request (errors excepted) must now be a record.
  answered=$(sed -n 's/^# proxied requests answered: //p' "$data_dir/results" | awk '{ n += $1 } END { print n }')
  if [ "$backend" = postgres ]; then
    records=$(psql "$url" -Atc 'SELECT count(*) FROM records')
  else
    records=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM records").fetchone()[0])' "$data_dir/handoffrail.db")
  fi
  echo "# $backend: $answered proxied requests answered, $records records stored"
  [ "$records" -eq "$answered" ] || { echo "expected one record per proxied request" >&2; exit 1; }
  tail -n 5 "$data_dir/server.log" | grep -i -E 'error|warn' || true
  rm -rf "$data_dir"
done
if [[ " $backends " == *" postgres "* ]]; then
  psql "$pg_server/postgres" -qc 'DROP DATABASE IF EXISTS handoffrail_bench' 2>/dev/null
fi
