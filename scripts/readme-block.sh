#!/usr/bin/env bash
# Prints the fenced code block that follows `<!-- quickstart:NAME -->` in README.md, so CI runs the README's
# examples exactly as written.
set -euo pipefail
name=$1
awk -v marker="<!-- quickstart:${name} -->" '
  $0 == marker { found = 1; next }
  found && /^```/ { if (inside) exit; inside = 1; next }
  inside { print }
' "$(dirname "$0")/../README.md"
