# cfkit's commands. `./just` (the wrapper in the repo root) bootstraps .venv first; plain `just`
# works too where it is installed. Run `./just --list` for this list with descriptions.

set shell := ["bash", "-euo", "pipefail", "-c"]

root := justfile_directory()
export VIRTUAL_ENV := root / ".venv"
# The Python tools are the package tools/cfkit_tools, run as `python -m cfkit_tools.<module>`.
export PYTHONPATH := root / "tools"
export PATH := root / ".venv/bin" + ":" + env_var('HOME') + "/.cargo/bin:" + env_var('PATH')
# tch links the libtorch of the venv's torch==2.13.0 wheel.
export LIBTORCH_USE_PYTORCH := "1"
python := root / ".venv/bin/python"

# List the recipes.
default:
    @just --justfile {{justfile()}} --list

# Create or update .venv from tools/requirements.txt (idempotent).
bootstrap:
    @{{root}}/tools/bootstrap-venv.sh

# Build the cfkit binary (release) into target/release/cfkit, with the distributed layer (Gloo's headers are installed first): every recipe that builds cfkit builds this same binary.
build: bootstrap gloo nasm
    cargo build --release --bin cfkit

# Build counterfactual shards: configs/fashionshift/build.toml (FashionShift train + the committed teacher) unless ARGS give --config FILE.
build-counterfactuals *ARGS: build fashion-mnist
    #!/usr/bin/env bash
    set -euo pipefail
    args="{{ARGS}}"
    if [[ "$args" != *--config* ]]; then
        [ -f data/fashionshift/manifest.json ] || target/release/cfkit demo-data --out data/fashionshift -q
        args="--config configs/fashionshift/build.toml $args"
    fi
    target/release/cfkit build-counterfactuals $args

# Train the FashionShift demo teacher from scratch (configs/fashionshift/pretrain-teacher.toml, ~15 min on 2 cores) and copy its best checkpoint to assets/teacher/.
pretrain-teacher: build fashion-mnist
    [ -f data/fashionshift/manifest.json ] || target/release/cfkit demo-data --out data/fashionshift -q
    target/release/cfkit train --config configs/fashionshift/pretrain-teacher.toml --out runs/pretrain-teacher --resume
    mkdir -p assets/teacher
    cp runs/pretrain-teacher/checkpoints/best/{model.safetensors,head.safetensors,config.json,checkpoint.json} assets/teacher/

# Fine-tune the committed teacher on FashionShift train (configs/fashionshift/ft.toml; METHOD ft or lp) and print the ID/OOD table.
finetune-demo METHOD="ft" *ARGS: build fashion-mnist
    [ -f data/fashionshift/manifest.json ] || target/release/cfkit demo-data --out data/fashionshift -q
    target/release/cfkit train --config configs/fashionshift/{{METHOD}}.toml --resume {{ARGS}}

# The headline method on FashionShift: offline masked feature distillation, ObjMaskSingleFill(0.3), from the committed teacher (configs/fashionshift/masked-fd.toml); prints the ID/OOD table (7 min on 2 cores once the shards exist).
train *ARGS: build fashion-mnist
    [ -f data/fashionshift/manifest.json ] || target/release/cfkit demo-data --out data/fashionshift -q
    [ -f data/fashionshift-cf/manifest.json ] || target/release/cfkit build-counterfactuals --config configs/fashionshift/build.toml -q
    target/release/cfkit train --config configs/fashionshift/masked-fd.toml --resume {{ARGS}}

# The whole FashionShift benchmark over 3 seeds (configs/fashionshift/benchmark.toml, cfkit_tools.demo.run): RESULTS.md, results/fashionshift.json, the ID-vs-OOD and frontier plots. About 7.5 hours on 2 cores; `--quick` (seed 0, three weights, ~45 min) reports into results/quick/; stop and rerun at will (finished runs are kept).
demo *ARGS: build fashion-mnist
    [ -f data/fashionshift/manifest.json ] || target/release/cfkit demo-data --out data/fashionshift -q
    {{python}} -m cfkit_tools.demo.run --cfkit target/release/cfkit {{ARGS}}

# Choose the FD weight on the validation hold-out only: FT and masked FD at weights 0.03, 0.1, 0.3, 1 (cfkit_tools.demo.tune_distill_weight, ~40 min on 2 cores).
tune-fd-weight *ARGS: build fashion-mnist
    [ -f data/fashionshift/manifest.json ] || target/release/cfkit demo-data --out data/fashionshift -q
    [ -f data/fashionshift-cf/manifest.json ] || target/release/cfkit build-counterfactuals --config configs/fashionshift/build.toml -q
    {{python}} -m cfkit_tools.demo.tune_distill_weight --method fd --cfkit target/release/cfkit {{ARGS}}

# The same rule for the KD weight of the demo's FT+KD (clean images, T = 10); reuses tune-fd-weight's FT run when it exists.
tune-kd-weight *ARGS: build fashion-mnist
    [ -f data/fashionshift/manifest.json ] || target/release/cfkit demo-data --out data/fashionshift -q
    [ -f data/fashionshift-cf/manifest.json ] || target/release/cfkit build-counterfactuals --config configs/fashionshift/build.toml -q
    {{python}} -m cfkit_tools.demo.tune_distill_weight --method kd --cfkit target/release/cfkit $([ -f runs/tune-fd-weight/ft/report.json ] && echo --ft-run runs/tune-fd-weight/ft) {{ARGS}}

# The paper's ImageNet chain for MODEL (vit-b-32 or vit-b-16) from files on disk: zero-shot head and checkpoint from WEIGHTS (OpenAI's .pt or safetensors), train shards from TRAIN (wnid folders), counterfactuals, FT / FT+FD / masked FD / LP-FT (configs/imagenet/MODEL), the evaluation suite under EVAL_ROOT on each, WiSE-FT sweeps; table in runs/imagenet/MODEL/results.md. Resumable (tools/imagenet.sh).
imagenet MODEL WEIGHTS TRAIN EVAL_ROOT: build
    {{root}}/tools/imagenet.sh {{quote(MODEL)}} {{quote(WEIGHTS)}} {{quote(TRAIN)}} {{quote(EVAL_ROOT)}}

# A stripped cfkit for the lent GPU machine (PyTorch 2.11.0+cu130, no Rust): built against the torch==2.11.0 wheel's libtorch with tch 0.24, linked to the machine's torch at run time; CPU smoke here (tools/device-binary.sh).
device-binary: bootstrap fashion-mnist gloo nasm
    {{root}}/tools/device-binary.sh

# The GPU check (cfkit_tools.gpu_check): doctor, parity fixtures, bf16 vs fp32 training, throughput vs PyTorch eager, the counterfactual pipeline, the methods' step rates, peak memory, data-parallel FT, FashionShift end to end vs the CPU grid; gpu-check.{json,md} into --out (the H200 run: results/gpu/). `just gpu-check --device cpu --smoke --out DIR` runs it at tiny sizes (CI does, from cargo test).
gpu-check *ARGS: build
    {{python}} -m cfkit_tools.gpu_check --cfkit target/release/cfkit {{ARGS}}

# Install Gloo's headers (Debian package libgloo-dev) if they are missing: the distributed layer's C++ shim needs them.
gloo:
    @{{root}}/tools/ensure-gloo.sh

# Install the NASM assembler (Debian package nasm) if it is missing, on x86: libjpeg-turbo's SIMD JPEG decoding (same bytes as its C code, about twice as fast).
nasm:
    @{{root}}/tools/ensure-nasm.sh

# Install Fashion-MNIST (Debian package dataset-fashion-mnist) if it is missing.
fashion-mnist:
    @{{root}}/tools/ensure-fashion-mnist.sh

# The validation CI runs: rustfmt check, clippy with warnings as errors, every test.
check: bootstrap fashion-mnist gloo nasm
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    {{python}} -m pyflakes $(git ls-files '*.py')
    cargo test --workspace

# Same as `check` (the README's test command).
test: check

# Regenerate the committed parity fixtures (tiny models) with transformers and open_clip.
parity-fixtures: bootstrap
    {{python}} tests/parity/make_fixtures.py --case tiny --out tests/fixtures/parity
    {{python}} tests/parity/make_fixtures.py --case open_clip-gelu --out tests/fixtures/parity
    {{python}} tests/parity/make_fixtures.py --case open_clip-squash --out tests/fixtures/parity
    {{python}} tests/preprocess/open_clip_variants.py --fixtures tests/fixtures/preprocess

# Parity of a ViT-B/32-shaped vision tower against transformers and open_clip (fixture made on the fly, ~1 GB).
parity-b32: bootstrap gloo nasm
    {{python}} tests/parity/make_fixtures.py --case vit-b-32 --out target/parity
    CFKIT_PARITY_DIR={{root}}/target/parity cargo test --release -p cfkit-counterfactual --test parity -- --ignored

# Generate the FashionShift demo splits as image shards into OUT (default data/fashionshift).
demo-data OUT="data/fashionshift" *ARGS: build fashion-mnist
    target/release/cfkit demo-data --out {{OUT}} {{ARGS}}

# Read+decode images/s of image shards (FashionShift train), cfkit next to pyarrow + PIL, same run.
bench-data: build fashion-mnist
    cargo build --release -p cfkit-pipeline --example bench_data
    [ -f target/bench-data/manifest.json ] || target/release/cfkit demo-data --out target/bench-data --splits train -q
    {{python}} -m cfkit_tools.bench.data --rust-bin target/release/examples/bench_data --dir target/bench-data --split train

# How well each CAM method (mmcam, gradcam, rollout) of the demo teacher finds the garment on FashionShift val: object/context/random masks against the generator's garment mask (cfkit_tools.demo.cam_quality, ~5 min).
cam-quality *ARGS: build fashion-mnist
    [ -f data/fashionshift/manifest.json ] || target/release/cfkit demo-data --out data/fashionshift -q
    {{python}} -m cfkit_tools.demo.cam_quality --cfkit target/release/cfkit {{ARGS}}

# Seconds to read the demo's all-strategy counterfactual shards as each kind of run needs them (column projection, one strategy's variants) against reading every column and variant, same run.
bench-cf-read: build fashion-mnist
    cargo build --release -p cfkit-schemas --example bench_cf_read
    [ -f data/fashionshift/manifest.json ] || target/release/cfkit demo-data --out data/fashionshift -q
    [ -f data/fashionshift-cf-all/manifest.json ] || target/release/cfkit build-counterfactuals --config configs/fashionshift/build-all.toml
    mkdir -p results/bench
    target/release/examples/bench_cf_read data/fashionshift-cf-all train "ObjMaskSingleFill(0.3)" 3 | tee results/bench/cf-read.json

# Forward+backward images/s of the tiny and vit-b-32 presets, cfkit next to PyTorch eager, same run.
bench-models *ARGS: build
    cargo build --release -p cfkit-models --example bench_models
    {{python}} -m cfkit_tools.bench.models --rust-bin target/release/examples/bench_models {{ARGS}}

# FT step images/s (forward, CE, backward, clip, AdamW) of tiny and vit-b-32, cfkit next to PyTorch eager, same run; and the shard loader alone.
bench-train *ARGS: build fashion-mnist
    cargo build --release -p cfkit-trainer --example bench_train
    [ -f target/bench-data/manifest.json ] || target/release/cfkit demo-data --out target/bench-data --splits train -q
    {{python}} -m cfkit_tools.bench.train --rust-bin target/release/examples/bench_train --loader-dir target/bench-data {{ARGS}}

# images/s and device-busy fraction of build-counterfactuals (tiny: demo teacher; vit-b-32: random weights), stages overlapped and not.
bench-pipeline *ARGS: build fashion-mnist
    {{python}} -m cfkit_tools.bench.pipeline --cfkit target/release/cfkit {{ARGS}}

# Bytes per image (clean rows, counterfactual variants by column) and loader images/s per core at 224 px on real photographs, with the disk and cores for ImageNet-1k (cfkit_tools.bench.storage).
bench-storage *ARGS: build
    cargo build --release -p cfkit-pipeline --example bench_data
    cargo build --release -p cfkit-trainer --example bench_train
    {{python}} -m cfkit_tools.bench.storage --cfkit target/release/cfkit --rust-bin target/release/examples/bench_data --loader-bin target/release/examples/bench_train {{ARGS}}

# ImageNet's shape on a CPU: 1,000 class-sorted folders -> prepare -> counterfactuals (1 and 2 workers) -> short FT and masked FD; same-class donor rate vs random, classes per batch vs a permutation, the hold-out of each run (cfkit_tools.rehearsal.imagenet_shape, about 10 min).
rehearse-imagenet *ARGS: build
    {{python}} -m cfkit_tools.rehearsal.imagenet_shape --cfkit target/release/cfkit {{ARGS}}

# Damaged JPEGs (1,000 by default, seeded): cfkit prepare must keep exactly what Pillow reads, with the reference's pixels (tests/realfiles/damaged_jpegs.py).
check-damaged-jpegs *ARGS: build
    {{python}} {{root}}/tests/realfiles/damaged_jpegs.py --cfkit target/release/cfkit {{ARGS}}

# Decode + preprocess images/s per core at 224 px of source files (ImageNet-like JPEGs, the mixed-format real-file corpus), cfkit next to Pillow + torchvision's ImageFolder loading, same run, same pixels checked (cfkit_tools.bench.decode).
bench-decode *ARGS: bootstrap nasm
    cargo build --release -p cfkit-pipeline --example bench_decode
    {{python}} -m cfkit_tools.bench.decode --bin target/release/examples/bench_decode {{ARGS}}

# `cfkit prepare`'s peak memory and speed from an ImageFolder, Hugging Face Parquet and WebDataset tars of the same real-photograph JPEGs, at N and 4N rows (cfkit_tools.bench.sources; fails when memory grows with the rows).
bench-sources *ARGS: build
    {{python}} -m cfkit_tools.bench.sources --cfkit target/release/cfkit {{ARGS}}

# Regenerate the ecosystem fixtures (tests/fixtures/ecosystem): the same photographs as an ImageFolder, as Hugging Face datasets Parquet and as WebDataset tars, written by those libraries.
ecosystem-fixtures: bootstrap
    {{python}} tests/ecosystem/make_fixtures.py --out tests/fixtures/ecosystem

# Data-parallel FT throughput: 2 ranks x 1 thread (Gloo) against 1 rank x 1 thread, and the all-reduce share of a step (cfkit_tools.bench.ddp).
bench-ddp *ARGS: build fashion-mnist gloo
    {{python}} -m cfkit_tools.bench.ddp --cfkit target/release/cfkit {{ARGS}}

# Epoch time of FT, offline masked FD and online masked FD on the same data and model, side by side (ratios; cfkit_tools.bench.methods).
bench-methods *ARGS: build fashion-mnist
    {{python}} -m cfkit_tools.bench.methods --cfkit target/release/cfkit {{ARGS}}
