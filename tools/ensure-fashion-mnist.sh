#!/usr/bin/env bash
# Makes sure Fashion-MNIST (Debian package dataset-fashion-mnist) is installed; the FashionShift
# demo and its tests read /usr/share/datasets/fashion-mnist. Idempotent.
set -euo pipefail
dir=/usr/share/datasets/fashion-mnist
if [[ -f "$dir/train-images-idx3-ubyte.gz" && -f "$dir/t10k-labels-idx1-ubyte.gz" ]]; then
  exit 0
fi
exec "$(dirname "${BASH_SOURCE[0]}")/ensure-debian-package.sh" dataset-fashion-mnist "$dir/t10k-labels-idx1-ubyte.gz" \
  "30 MB; or pass --fashion-mnist DIR with the four IDX .gz files"
