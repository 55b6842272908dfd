#!/usr/bin/env bash
# Regenerates the sealed fixtures from fixtures/records/orders.har, the way a user would make them: a throwaway
# server imports the HAR and exports it again (every entry now carries its sealed record), and its public key is
# saved beside it. The tampered copy is that export with one figure of the first response body changed, as a
# forger would change it. The throwaway server's private key is deleted; only the public key stays.
#
#   scripts/make-sealed-fixtures.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet
data_dir=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$data_dir"' EXIT
key=$(python3 -c 'import base64, secrets; print("hr_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("="))')
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
HANDOFFRAIL_ADMIN_KEY=$key HANDOFFRAIL_LOG=warn target/debug/handoffrail serve --port "$port" \
  --data-dir "$data_dir" --rules fixtures/rules >"$data_dir/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done

client=(target/debug/handoffrail --server-url "http://127.0.0.1:$port" --api-key "$key")
"${client[@]}" records import fixtures/records/orders.har >/dev/null
"${client[@]}" records export --as har --output fixtures/records/orders-sealed.har
curl -sf -H "X-API-Key: $key" "http://127.0.0.1:$port/api/v1/records/public-key" \
  | python3 -c 'import json, sys; json.dump(json.load(sys.stdin), sys.stdout, indent=2); print()' \
  >fixtures/records/record-key.pub.json

python3 - <<'EOF'
import base64, json

with open("fixtures/records/orders-sealed.har") as f:
    har = json.load(f)
with open("fixtures/records/orders-sealed.har", "w") as f:
    json.dump(har, f, indent=2)
    f.write("\n")
content = har["log"]["entries"][0]["response"]["content"]
body = base64.b64decode(content["text"])
assert b'"total": 89.5' in body, body
content["text"] = base64.b64encode(body.replace(b'"total": 89.5', b'"total": 98.5')).decode()
with open("fixtures/records/orders-tampered.har", "w") as f:
    json.dump(har, f, indent=2)
    f.write("\n")
EOF
echo "wrote fixtures/records/{orders-sealed.har,orders-tampered.har,record-key.pub.json}"
