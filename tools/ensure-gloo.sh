#!/usr/bin/env bash
# Makes sure Gloo's headers (Debian package libgloo-dev) are installed: cfkit-dist compiles its
# C++ shim over libtorch's c10d ProcessGroupGloo, whose header includes <gloo/...>; the torch
# wheel ships c10d's headers and Gloo's code (in libtorch_cpu) but not Gloo's headers. Idempotent.
set -euo pipefail
if [[ -f /usr/include/gloo/config.h || -n "${CFKIT_GLOO_INCLUDE:-}" ]]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "cfkit: Gloo's headers are missing and apt-get is not available; install libgloo-dev (or" >&2
  echo "       set CFKIT_GLOO_INCLUDE to a directory holding gloo/); without them cfkit builds" >&2
  echo "       without distributed training" >&2
  exit 1
fi
sudo=""
if [[ "$(id -u)" != 0 ]]; then
  if command -v sudo >/dev/null; then sudo="sudo"; else
    echo "cfkit: installing libgloo-dev needs root; run: apt-get install libgloo-dev" >&2
    exit 1
  fi
fi
echo "cfkit: installing Debian package libgloo-dev (Gloo's headers, for the distributed layer)" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libgloo-dev >/dev/null
