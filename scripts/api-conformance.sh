#!/usr/bin/env bash
# Schemathesis, every check and every phase (examples, coverage, fuzzing, stateful), against a release binary's
# served /openapi.json: every operation must answer as the document says, accept what it allows and refuse what it
# does not. Settings that a schema cannot state are in tests/api_conformance/ (schemathesis.toml, hooks.py).
#
#   scripts/api-conformance.sh [BINARY] [MAX_EXAMPLES]     (SEED=n for other cases than CI's fixed seed 1)
#
# Three runs, because some operations change who may call the rest: the packet, record, evaluation, tenant and
# trust operations with a system administrator's key; the schema registry with an administrator of a tenant of its
# own (packets elsewhere then name no registered schema); and key revocation and rotation with an administrator
# of a third tenant, since schemathesis revokes and rotates the very key it calls with.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${1:-target/release/handoffrail}
max_examples=${2:-50}
seed=${SEED:-1}
here=$PWD/tests/api_conformance

venv=target/conformance-venv
if [ ! -x "$venv/bin/schemathesis" ]; then
  # CPython 3.11.7's ast module breaks hypothesis' strategy descriptions ("AST constructor recursion depth
  # mismatch"); any newer interpreter will do.
  python=python3
  for candidate in python3.13 python3.12 "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python; do
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      python=$candidate
      break
    fi
  done
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
fi

scratch=$(mktemp -d)
free_port() { "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
new_key() { "$venv/bin/python" -c 'import base64, secrets; print("hr_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("="))'; }
port=$(free_port)
system_key=$(new_key)
HANDOFFRAIL_ADMIN_KEY="$system_key" "$binary" serve --port "$port" --proxy-port "$(free_port)" \
  --data-dir "$scratch/data" --no-rate-limits >"$scratch/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$scratch"' EXIT
base=http://127.0.0.1:$port
for _ in $(seq 1 100); do
  curl -sf "$base/ready" >/dev/null && break
  sleep 0.1
done
curl -sf "$base/ready" >/dev/null || { cat "$scratch/server.log"; exit 1; }

# An administrator key of a new tenant named $1.
tenant_admin() {
  local tenant
  tenant=$(curl -sf -X POST "$base/api/v1/tenants" -H "X-API-Key: $system_key" -H 'Content-Type: application/json' \
    -d "{\"name\": \"$1\", \"max_api_keys\": 1000}" | "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["id"])')
  curl -sf -X POST "$base/api/v1/keys" -H "X-API-Key: $system_key" -H 'Content-Type: application/json' \
    -d "{\"name\": \"$1 admin\", \"tenant_id\": \"$tenant\", \"role\": \"admin\"}" |
    "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["key"])'
}
schemas_key=$(tenant_admin conformance-schemas)
keys_key=$(tenant_admin conformance-keys)

# Every check but `use_after_free`: a packet DELETE is a soft delete and the packet stays readable
# (schemathesis.toml says why), and `--checks all` would turn the check back on whatever the file says.
run() {
  local title=$1 key=$2
  shift 2
  printf -- '--- %s\n' "$title"
  SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$here" "$venv/bin/schemathesis" --config-file "$here/schemathesis.toml" \
    --no-color run "$base/openapi.json" -H "X-API-Key: $key" --checks all --max-examples "$max_examples" \
    --exclude-checks use_after_free --workers 2 --seed "$seed" "$@" ||
    { tail -n 50 "$scratch/server.log"; return 1; }
}

# The live streams (/events, /ws) never end for a valid key; tests/integration/live.rs covers them.
run "everything but the schema registry, key revocation and the live streams" "$system_key" \
  --exclude-path-regex '^/api/v1/(schemas|keys/\{key_id\})|^/(events|ws)$' 
run "the schema registry" "$schemas_key" --include-path-regex '^/api/v1/schemas'
run "key revocation and rotation" "$keys_key" --include-path-regex '^/api/v1/keys'
grep -q "panicked" "$scratch/server.log" && { grep -B2 -A10 "panicked" "$scratch/server.log"; exit 1; }
echo "API conformance: no failures"
