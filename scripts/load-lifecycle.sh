#!/usr/bin/env bash
# Measures packet lifecycles (create → claim → in_progress → complete), creates, list requests and whole
# evaluation requests (10 claims over a stored 20 KB record, verdict stored), and verified creates (a create with
# five of those claims) per second with p50/p99 latency at
# concurrency 1/10/50, on SQLite and on PostgreSQL. The server is pinned to core 0 and
# the load generator to core 1, as the DESIGN.md budgets assume. The server runs with --no-rate-limits;
# LIMITS=counted keeps the rate limiter counting every request with limits too high to refuse any (its cost).
#
#   scripts/load-lifecycle.sh [SECONDS_PER_LEVEL]      (PostgreSQL from HANDOFFRAIL_BENCH_POSTGRES_URL,
#                                                       default postgres://postgres@127.0.0.1:5432;
#                                                       MODES="lifecycle create verified-create list evaluate";
#                                                       BACKENDS="sqlite postgres" to choose;
#                                                       BINARIES="old=path/to/handoffrail new=target/release/handoffrail"
#                                                       measures each build in turn, level by level, with
#                                                       the same generator: side by side in one run)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
pg_server=${HANDOFFRAIL_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}

cargo build --release --quiet
cargo bench --bench lifecycle --no-run --quiet 2>/dev/null
generator=$(ls -t target/release/deps/lifecycle-* | grep -v '\.d$' | head -1)
key=$(python3 -c 'import base64, secrets; print("hr_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("="))')
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# One fresh server (and database) per measurement, so each starts from the same state.
modes=${MODES:-lifecycle create verified-create list evaluate}
case "${LIMITS:-off}" in
  off) limits=(--no-rate-limits) ;;
  counted) limits=(--rate-limit-per-minute 1000000000 --rate-limit-per-hour free=1000000000,pro=1000000000,business=1000000000) ;;
  *) echo "LIMITS is off or counted" >&2; exit 2 ;;
esac

binaries=${BINARIES:-this=target/release/handoffrail}

measure() {
  local label=$1 url=$2 mode=$3 seed=$4 binary=$5 data_dir
  case " $modes " in *" $mode "*) ;; *) return 0 ;; esac
  data_dir=$(mktemp -d)
  if [ -n "$url" ]; then
    psql "$pg_server/postgres" -qc 'DROP DATABASE IF EXISTS handoffrail_bench' -c 'CREATE DATABASE handoffrail_bench' 2>/dev/null
  fi
  HANDOFFRAIL_ADMIN_KEY=$key HANDOFFRAIL_LOG=warn taskset -c 0 "$binary" serve \
    --port "$port" --data-dir "$data_dir" --database-url "${url:-sqlite://$data_dir/handoffrail.db}" \
    "${limits[@]}" >"$data_dir/server.log" 2>&1 &
  local server=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done
  if [ "$mode" = lifecycle ]; then echo "# $label: idle RSS $(ps -o rss= -p "$server" | tr -d ' ') KiB"; fi
  if [ -n "$seed" ]; then
    taskset -c 1 "$generator" --url "http://127.0.0.1:$port/api/v1" --api-key "$key" --seed "$seed" --seed-only
    # Measure the steady state a production table is in once autovacuum has visited it.
    if [ -n "$url" ]; then psql "$url" -qc 'VACUUM ANALYZE'; fi
  fi
  taskset -c 1 "$generator" --url "http://127.0.0.1:$port/api/v1" --api-key "$key" \
    --concurrency 1,10,50 --seconds "$seconds" --mode "$mode" --label "$label $mode${seed:+ ($seed rows)}"
  echo "# $label $mode: RSS after load $(ps -o rss= -p "$server" | tr -d ' ') KiB"
  kill "$server"; wait "$server" 2>/dev/null || true
  rm -rf "$data_dir"
}

for backend in ${BACKENDS:-sqlite postgres}; do
  url=""
  [ "$backend" = postgres ] && url="$pg_server/handoffrail_bench"
  for run in "lifecycle " "create " "verified-create " "list 1000" "list 10000" "evaluate "; do
    read -r mode seed <<<"$run"
    for named in $binaries; do
      measure "$backend ${named%%=*}" "$url" "$mode" "$seed" "${named#*=}"
    done
  done
done
psql "$pg_server/postgres" -qc 'DROP DATABASE IF EXISTS handoffrail_bench' 2>/dev/null
