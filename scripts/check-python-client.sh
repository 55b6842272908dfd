#!/usr/bin/env bash
# The Python client (clients/python) as a new user gets it: installed from the path into a fresh venv, type-checked
# (mypy --strict), its tests against the release binary, and the documents' examples run verbatim against a server
# and the stand-in upstream API — docs/python-client.md, and docs/sourcerykit-walkthrough.md, which must print
# PASS and then CAUGHT; and examples/verified-handoff, whose hallucinated handoff must wait for a human.
#
#   scripts/check-python-client.sh [BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
binary=$(realpath "${1:-target/release/handoffrail}")

venv=target/client-venv
rm -rf "$venv" && python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "./clients/python[test]"

echo "--- mypy --strict"
(cd clients/python && "$PWD/../../$venv/bin/mypy" src tests)

echo "--- the client's tests"
(cd clients/python && HANDOFFRAIL_BINARY="$binary" "$PWD/../../$venv/bin/pytest" -q -p no:cacheprovider tests)

echo "--- the documents' examples"
scratch=$(mktemp -d)
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
upstream_port=$(free_port) api_port=$(free_port) proxy_port=$(free_port)
key=$(python3 -c 'import base64, secrets; print("hr_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("="))')
python3 scripts/stand-in-api.py --port "$upstream_port" --tls-dir "$scratch/tls" 2>"$scratch/stand-in-api.log" &
upstream=$!
trap 'kill "$upstream" "${server:-}" 2>/dev/null || true; rm -rf "$scratch"' EXIT
for _ in $(seq 1 100); do
  curl -skf "https://localhost:$upstream_port/v1/stock/SKU-00003" >/dev/null && break
  sleep 0.1
done
HANDOFFRAIL_ADMIN_KEY="$key" "$binary" serve --port "$api_port" --proxy-port "$proxy_port" \
  --data-dir "$scratch/data" --upstream-ca "$scratch/tls/ca.pem" >"$scratch/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$api_port/ready" >/dev/null && break
  sleep 0.1
done
export HANDOFFRAIL_URL="http://127.0.0.1:$api_port/api/v1" HANDOFFRAIL_API_KEY="$key"
export HANDOFFRAIL_PROXY="127.0.0.1:$proxy_port"
export ORDERS_API="https://localhost:$upstream_port" WEATHER_API="https://localhost:$upstream_port"

"$venv/bin/python" scripts/doc-python.py docs/python-client.md python-client | tee "$scratch/client.out" \
  || { cat "$scratch/server.log"; exit 1; }
grep -qx "PASS \['match'\]" "$scratch/client.out"

"$venv/bin/python" scripts/doc-python.py docs/sourcerykit-walkthrough.md walkthrough >"$scratch/walkthrough.out" \
  || { cat "$scratch/walkthrough.out" "$scratch/server.log"; exit 1; }
outcomes=$(grep -o '^  "outcome": "[A-Z]*"' "$scratch/walkthrough.out" | cut -d'"' -f4 | paste -sd' ')
echo "walkthrough verdicts: $outcomes"
[ "$outcomes" = "PASS CAUGHT" ] || { cat "$scratch/walkthrough.out"; exit 1; }
grep -q '"detail": "claimed 9.9, record has 7.3 at \$.current.temperature_2m"' "$scratch/walkthrough.out"

echo "--- examples/verified-handoff: PASS is claimed by the writer, the hallucination waits for a human"
"$venv/bin/python" examples/verified-handoff/handoff.py | tee "$scratch/handoff.out" \
  || { cat "$scratch/server.log"; exit 1; }
grep -q "^truthful handoff: verdict PASS; status created$" "$scratch/handoff.out"
grep -q "^  claimed by the writer (claimed)$" "$scratch/handoff.out"
grep -q "^hallucinated handoff: verdict CAUGHT \['value_mismatch: claimed 12345.6, record has 1234.56 at \$.total'\]; status awaiting_human$" "$scratch/handoff.out"
grep -q "^  the writer may not claim it (409: " "$scratch/handoff.out"
grep -q "^  now awaiting_human$" "$scratch/handoff.out"
