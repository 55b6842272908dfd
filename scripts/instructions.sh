#!/usr/bin/env bash
# Instructions the server executes per unit of work (SQLite), counted by callgrind: unlike rates this does not
# drift with the machine, so two builds compare exactly.
#
#   scripts/instructions.sh proxy [BINARY...]       per proxied request, recording on (benches/proxy.rs)
#   scripts/instructions.sh lifecycle [BINARY...]   per packet lifecycle, create → claim → in_progress → complete,
#                                                    no webhook and no live subscriber (benches/lifecycle.rs)
#   scripts/instructions.sh hooked [BINARY...]      per lifecycle with one active hook asking for its four events,
#                                                    their deliveries included (benches/events.rs, concurrency 50)
#   scripts/instructions.sh unhooked [BINARY...]    the same lifecycles without the hook, to compare with
#   (default BINARY: target/release/handoffrail)
#
# Each binary serves under `valgrind --tool=callgrind` on core 0; the generator runs on core 1: a warm-up, then
# counters zeroed, 20 s at concurrency 10 (the proxy adds 10 req/s open loop), then a dump.
set -euo pipefail
cd "$(dirname "$0")/.."
workload=${1:?proxy, lifecycle, hooked or unhooked}
shift
bench=$workload
case $workload in hooked | unhooked) bench=events ;; esac
command -v valgrind >/dev/null || { echo "valgrind is required" >&2; exit 1; }
cargo build --release --quiet
cargo bench --bench "$bench" --no-run --quiet 2>/dev/null
generator=$(ls -t target/release/deps/"$bench"-* | grep -v '\.d$' | head -1)
key=$(python3 -c 'import base64, secrets; print("hr_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("="))')
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
seconds=20

for binary in "${@:-target/release/handoffrail}"; do
  data_dir=$(mktemp -d)
  api_port=$(free_port)
  proxy_port=$(free_port)
  HANDOFFRAIL_ADMIN_KEY=$key HANDOFFRAIL_LOG=warn taskset -c 0 valgrind --tool=callgrind \
    --callgrind-out-file="$data_dir/callgrind.out" "$binary" serve --port "$api_port" --proxy-port "$proxy_port" \
    --data-dir "$data_dir" --database-url "sqlite://$data_dir/handoffrail.db" --no-rate-limits \
    --allowed-webhook-hosts 127.0.0.1 \
    >"$data_dir/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$api_port/ready" >/dev/null && break; sleep 0.2; done
  # Prints how many units of work were done.
  load() {
    if [ "$bench" = events ]; then
      mode=lifecycles
      [ "$workload" = hooked ] && mode=hooked-lifecycles
      taskset -c 1 "$generator" --url "http://127.0.0.1:$api_port" --api-key "$key" --seconds "$1" \
        --mode "$mode" | sed -n 's/^# lifecycles: //p'
    elif [ "$workload" = proxy ]; then
      taskset -c 1 "$generator" --proxy "127.0.0.1:$proxy_port" --api-key "$key" --seconds "$1" \
        --concurrency 10 --rates 10 --label "$binary" | sed -n 's/^# proxied requests answered: //p'
    else
      taskset -c 1 "$generator" --url "http://127.0.0.1:$api_port/api/v1" --api-key "$key" --concurrency 10 \
        --seconds "$1" --mode lifecycle --label measured |
        awk -F'|' -v seconds="$1" '$2 ~ /measured/ { gsub(/ /, "", $4); printf "%d\n", $4 * seconds }'
    fi
  }
  load 3 >/dev/null
  callgrind_control --zero "$server" >/dev/null 2>&1
  done_units=$(load "$seconds")
  callgrind_control --dump "$server" >/dev/null 2>&1
  sleep 2
  kill "$server"; wait "$server" 2>/dev/null || true
  instructions=$(callgrind_annotate "$data_dir/callgrind.out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }')
  echo "$binary: $done_units ${workload}s, $instructions instructions, $((instructions / done_units)) per $workload"
  rm -rf "$data_dir"
done
