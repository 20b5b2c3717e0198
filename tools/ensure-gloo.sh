#!/usr/bin/env bash
# Makes sure Gloo's headers (Debian package libgloo-dev) are installed: cfkit-distributed compiles its
# C++ shim over libtorch's c10d ProcessGroupGloo, whose header includes <gloo/...>; the torch
# wheel ships c10d's headers and Gloo's code (in libtorch_cpu) but not Gloo's headers. Idempotent;
# CFKIT_GLOO_INCLUDE set: headers elsewhere, nothing to install.
set -euo pipefail
[[ -n "${CFKIT_GLOO_INCLUDE:-}" ]] && exit 0
exec "$(dirname "${BASH_SOURCE[0]}")/ensure-debian-package.sh" libgloo-dev /usr/include/gloo/config.h \
  "Gloo's headers, for the distributed layer"
