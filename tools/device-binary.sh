#!/usr/bin/env bash
# `just device-binary`: a cfkit for the GPU machine lent through the `device` tool (one H200,
# PyTorch 2.11.0+cu130 in its own Python, no Rust, no network, 64 MiB carried to it).
#
# Route: build here against the libtorch that machine holds — the PyPI wheel torch==2.11.0 is the
# same cu130 build — with the tch release made for it (tch/torch-sys 0.24 <-> libtorch 2.11;
# the project pins tch 0.26 <-> 2.13 for everything else), then strip. The binary carries no
# libtorch: on the device it links the installed torch's libraries at run time
# (LD_LIBRARY_PATH=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')/lib).
# libtorch_cuda's own CUDA
# dependencies (cuBLAS, cuDNN, NCCL...) are not on this machine, so the link allows undefined
# symbols inside those shared libraries; they resolve on the device.
#
# Steps (each skipped when done): download the wheel (530 MB, pip --no-deps) and unpack its
# headers and libraries into target/device/libtorch-2.11.0; NCCL's headers of the version torch
# 2.11 links (target/device/nvidia, for cfkit-distributed's NCCL group); copy the workspace
# sources to target/device/src with tch/torch-sys set to =0.24.0; `cargo build --release` there
# (its own target dir, target/device/build: a first build compiles every crate); strip into
# target/device/cfkit. CPU smoke: `target/device/cfkit doctor --device cpu` with the unpacked
# libraries.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dev=target/device
lt=$dev/libtorch-2.11.0
python=.venv/bin/python
mkdir -p "$dev"
if [[ ! -f $lt/lib/libtorch_cpu.so ]]; then
  echo "== unpacking libtorch 2.11.0 (cu130) from the PyPI wheel" >&2
  [[ -f $dev/wheel/torch-2.11.0-cp311-cp311-manylinux_2_28_x86_64.whl ]] || \
    $python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
      --platform manylinux_2_28_x86_64 torch==2.11.0 -d "$dev/wheel"
  rm -rf "$lt.tmp" && mkdir -p "$lt.tmp"
  (cd "$lt.tmp" && unzip -q "$root/$dev/wheel/"torch-2.11.0-*.whl 'torch/include/*' 'torch/share/*' \
    'torch/lib/*')
  rm -rf "$lt" && mv "$lt.tmp/torch" "$lt" && rm -rf "$lt.tmp"
fi
# cfkit-distributed's NCCL group (distributed/build.rs) is compiled against NCCL's headers of the version torch
# 2.11 was built with (its wheel pins nvidia-nccl-cu13==2.28.9; ProcessGroupNCCL's layout follows
# the NCCL version macros), and CUDA 13.0's headers from the project venv (runtime, crt, cccl).
nvidia=$dev/nvidia
if [[ ! -f $nvidia/nccl/include/nccl.h ]]; then
  echo "== NCCL 2.28.9 headers (the version torch 2.11 links)" >&2
  [[ -n $(ls "$dev/wheel/"nvidia_nccl_cu13-2.28.9-*.whl 2>/dev/null) ]] || \
    $python -m pip download --quiet --no-deps --only-binary=:all: nvidia-nccl-cu13==2.28.9 -d "$dev/wheel"
  rm -rf "$nvidia.tmp" && mkdir -p "$nvidia.tmp"
  (cd "$nvidia.tmp" && unzip -q "$root/$dev/wheel/"nvidia_nccl_cu13-2.28.9-*.whl 'nvidia/nccl/include/*')
  mkdir -p "$nvidia" && rm -rf "$nvidia/nccl" && mv "$nvidia.tmp/nvidia/nccl" "$nvidia/nccl"
  rm -rf "$nvidia.tmp" "$dev/wheel/"nvidia_nccl_cu13-*.whl
fi
cu13=$(ls -d "$root/.venv/lib/"python3*/site-packages/nvidia/cu13 | head -n 1)
ln -sfn "$cu13" "$nvidia/cu13"
echo "== workspace copy with tch 0.24 (libtorch 2.11)" >&2
src=$dev/src
rm -rf "$src" && mkdir -p "$src"
tar --exclude=./target --exclude=./.venv --exclude=./.git --exclude=./runs --exclude=./data \
  --exclude=./results --exclude=./.cfkit-cache -cf - . | tar -xmf - -C "$src"  # -m: fresh mtimes, so cargo rebuilds what changed
sed -i -e 's/^tch = "0.26"/tch = "=0.24.0"/' -e 's/^torch-sys = "0.26"/torch-sys = "=0.24.0"/' "$src/Cargo.toml"
grep -q '^tch = "=0.24.0"' "$src/Cargo.toml" || { echo "could not pin tch 0.24 in $src/Cargo.toml" >&2; exit 1; }
echo "== cargo build --release (tch 0.24 against $lt)" >&2
(cd "$src" && env -u LIBTORCH_USE_PYTORCH LIBTORCH="$root/$lt" CARGO_TARGET_DIR="$root/target/device/build" \
  CFKIT_NVIDIA_DIR="$root/$nvidia" \
  RUSTFLAGS="-C link-arg=-Wl,--allow-shlib-undefined" \
  cargo build --release --bin cfkit)
strip -o "$dev/cfkit" "$dev/build/release/cfkit"
git rev-parse HEAD > "$dev/cfkit.commit" 2>/dev/null || echo unknown > "$dev/cfkit.commit"
echo "== $(du -h "$dev/cfkit" | cut -f1) $dev/cfkit (stripped)" >&2
echo "== CPU smoke: doctor and parity on this machine with the unpacked libtorch 2.11" >&2
# The wheel's libtorch_cuda needs the CUDA 13 libraries; the project venv's torch wheel brought
# them (site-packages/nvidia/*/lib), and they load on a machine without a GPU.
nv=$(find "$root/.venv/lib/"python3*/site-packages/nvidia -maxdepth 3 -type d -name lib | tr '\n' ':')
export LD_LIBRARY_PATH="$root/$lt/lib:$nv"
"$dev/cfkit" doctor --device cpu
"$dev/cfkit" doctor --device cpu --json | grep -q '"nccl": true' || { echo "the device binary has no NCCL group" >&2; exit 1; }
"$dev/cfkit" parity --device cpu --fixtures tests/fixtures/parity
echo "== CPU smoke: 2-rank data-parallel FT (Gloo of libtorch 2.11) on a tiny FashionShift set" >&2
smoke=$(mktemp -d)
trap 'rm -rf "$smoke"' EXIT
"$dev/cfkit" demo-data --out "$smoke/data" --splits train --scale 0.01 -q >/dev/null
printf '[model]\nname = "tiny"\n[data]\nshards = "data"\nsplit = "train"\nval_holdout = 4\n[train]\nmethod = "ft"\nepochs = 1\nbatch_size = 32\nseed = 1\ndevice = "cpu"\n[eval]\nsets = []\n' > "$smoke/ft.toml"
port=$((20000 + RANDOM % 20000))
pids=()
for r in 0 1; do
  RANK=$r WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port OMP_NUM_THREADS=1 \
    "$dev/cfkit" train --config "$smoke/ft.toml" --out "$smoke/run" -q --dist-timeout 120 >/dev/null &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
grep -q '"world_size": 2' "$smoke/run/run.json" && echo "2-rank FT: ok" >&2
