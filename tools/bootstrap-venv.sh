#!/usr/bin/env bash
# Creates or updates the project virtualenv (.venv) from tools/requirements.txt.
# Idempotent: a stamp holding the requirements' hash skips the work when nothing changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
req="$root/tools/requirements.txt"
stamp="$venv/.cfkit-requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/just" ]]; then
  exit 0
fi
python="${PYTHON:-python3}"
if ! command -v "$python" >/dev/null; then
  echo "cfkit bootstrap: '$python' not found; install Python 3.10+ (Debian: apt-get install python3)" >&2
  exit 1
fi
if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
    echo "cfkit bootstrap: installing python3-venv with apt-get" >&2
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  else
    echo "cfkit bootstrap: Python's venv module is missing; install it (Debian: apt-get install python3-venv)" >&2
    exit 1
  fi
fi
echo "cfkit bootstrap: creating $venv (torch 2.13.0 for libtorch, just, reference libraries; a few minutes the first time)" >&2
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r "$req"
echo "$want" > "$stamp"
