#!/usr/bin/env bash
# Makes sure Fashion-MNIST (Debian package dataset-fashion-mnist) is installed; the FashionShift
# demo and its tests read /usr/share/datasets/fashion-mnist. Idempotent.
set -euo pipefail
dir=/usr/share/datasets/fashion-mnist
if [[ -f "$dir/train-images-idx3-ubyte.gz" && -f "$dir/t10k-labels-idx1-ubyte.gz" ]]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "cfkit: Fashion-MNIST is missing from $dir and apt-get is not available;" >&2
  echo "       install the Debian package 'dataset-fashion-mnist' (or pass --fashion-mnist DIR with the four IDX .gz files)" >&2
  exit 1
fi
sudo=""
if [[ "$(id -u)" != 0 ]]; then
  if command -v sudo >/dev/null; then sudo="sudo"; else
    echo "cfkit: installing dataset-fashion-mnist needs root; run: apt-get install dataset-fashion-mnist" >&2
    exit 1
  fi
fi
echo "cfkit: installing Debian package dataset-fashion-mnist (30 MB)" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null
