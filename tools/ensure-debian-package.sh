#!/usr/bin/env bash
# ensure-debian-package.sh PACKAGE FILE WHY: installs the Debian package PACKAGE with apt-get
# (through sudo when not root) unless FILE exists. Idempotent; used by the project's recipes for
# what the registries' packages do not carry (tools/ensure-*.sh).
set -euo pipefail
pkg=$1 file=$2 why=$3
[[ -e $file ]] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "cfkit: $file is missing and apt-get is not available; install the Debian package '$pkg' ($why)" >&2
  exit 1
fi
sudo=""
if [[ "$(id -u)" != 0 ]]; then
  if command -v sudo >/dev/null; then sudo="sudo"; else
    echo "cfkit: installing $pkg needs root; run: apt-get install $pkg ($why)" >&2
    exit 1
  fi
fi
echo "cfkit: installing Debian package $pkg ($why)" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$pkg" >/dev/null
