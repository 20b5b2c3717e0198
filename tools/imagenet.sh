#!/usr/bin/env bash
# The ImageNet chain of the paper for one model (just imagenet MODEL WEIGHTS TRAIN_DIR EVAL_ROOT):
#   zero-shot head -> zero-shot checkpoint -> train shards (rows in a seeded random order, 10,240
#   held out as split train-holdout) -> counterfactual shards (headline strategy, K = 10 compact
#   variants) -> FT, FT+FD, masked FD offline and online, LP-FT (configs/imagenet/MODEL/) -> the
#   evaluation suite on each (best checkpoint, as the reference's eval.py) -> WiSE-FT sweeps from
#   the last checkpoints of FT and masked FD (as the reference's WiSE-FT) ->
#   runs/imagenet/MODEL/results.md.
# Every step is skipped when its output exists and training resumes, so the chain can be stopped
# and rerun at will. Environment knobs (for smoke runs and custom models):
#   CFKIT_MODEL_CONFIG  a config.json to use instead of the MODEL preset (same configs/ directory)
#   CFKIT_TRAIN_SET     space-separated --set overrides for every `cfkit train`
#   CFKIT_BUILD_SET     space-separated --set overrides for `cfkit build-counterfactuals`
#   CFKIT_METHODS       methods to train [default: "ft ft-fd masked-fd masked-fd-online lp-ft"]
#   CFKIT_ALPHAS        WiSE-FT mixing weights [default: 0:1:0.1]
#   CFKIT_HOLDOUT       rows of train held out as split train-holdout [default: 10240]
#   CFKIT_DEVICE        device for zero-shot head and evaluation [default: auto]
#   CFKIT_PRECISION     training precision: the recipes' tf32 (the reference's), or bf16 / fp32,
#                       whose runs go to runs/imagenet/MODEL/METHOD-PRECISION [default: tf32]
set -euo pipefail
if [[ $# -lt 4 ]]; then
  echo "usage: just imagenet MODEL WEIGHTS TRAIN_DIR EVAL_ROOT" >&2
  echo "  MODEL      vit-b-32 or vit-b-16 (configs/imagenet/MODEL/)" >&2
  echo "  WEIGHTS    OpenAI's ViT-B-32.pt / ViT-B-16.pt (TorchScript) or CLIP safetensors" >&2
  echo "  TRAIN_DIR  ImageNet train split: wnid folders (ILSVRC2012/train), or a directory of" >&2
  echo "             Hugging Face Parquet files (train-*.parquet) or of WebDataset tars (*.tar)" >&2
  echo "  EVAL_ROOT  directory holding the evaluation sets (see README, Fine-tune CLIP on ImageNet)" >&2
  exit 2
fi
model=$1 weights=$2 train=$3 evalroot=$4
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cfkit=target/release/cfkit
python=.venv/bin/python
export PYTHONPATH="$root/tools"  # the cfkit_tools package
cfg=configs/imagenet/$model
run=runs/imagenet/$model
[[ -d $cfg ]] || { echo "no recipes for '$model' (configs/imagenet/ has: $(ls configs/imagenet))" >&2; exit 2; }
for p in "$weights" "$train" "$evalroot"; do
  [[ -e $p ]] || { echo "'$p' does not exist" >&2; exit 2; }
done
mcfg=${CFKIT_MODEL_CONFIG:-$model}
device=${CFKIT_DEVICE:-auto}
read -r -a train_set <<< "${CFKIT_TRAIN_SET:-}"
read -r -a build_set <<< "${CFKIT_BUILD_SET:-}"
sets() { for s in "$@"; do printf -- '--set\n%s\n' "$s"; done; }
mkdir -p "$run"
step() { echo "== $*" >&2; }

step "zero-shot head (80 CLIP templates x 1000 classes)"
[[ -f $run/head.safetensors ]] || $cfkit zeroshot-head --model "$mcfg" --weights "$weights" \
  --classes assets/imagenet/wnids.txt --names assets/imagenet/classnames.txt \
  --out "$run/head.safetensors" --device "$device"
step "zero-shot checkpoint"
[[ -f $run/zeroshot/checkpoint.json ]] || $cfkit convert --model "$mcfg" --weights "$weights" \
  --head "$run/head.safetensors" --out "$run/zeroshot"
size=$($python -m cfkit_tools.imagenet_chain image-size "$run/zeroshot")
step "train shards ($size px)"
# --holdout: the reference's --val_size 10240, a split of its own (--data_split_seed 0).
# The train split's form: Hugging Face Parquet files, WebDataset tars, or wnid folders; the labels
# of the first two are indices in the standard wnid order, renamed to wnids by --classes.
shopt -s nullglob
# (timm's imagenet-1k-wds keeps train and validation tars in one folder: the train ones are taken.)
parquet=("$train"/train-*.parquet) tars=("$train"/*train*.tar)
(( ${#tars[@]} )) || tars=("$train"/*.tar)
shopt -u nullglob
if (( ${#parquet[@]} )); then source_args=(--hf-parquet "${parquet[@]}")
elif (( ${#tars[@]} )); then source_args=(--webdataset "${tars[@]}")
else source_args=(--image-folder "$train"); fi
[[ -f $run/shards/manifest.json ]] || $cfkit prepare "${source_args[@]}" \
  --classes assets/imagenet/wnids.txt --out "$run/shards" --image-size "$size" \
  --holdout "${CFKIT_HOLDOUT:-10240}" --holdout-split train-holdout --seed 0
step "counterfactual shards"
teacher_set=()
[[ -n ${CFKIT_MODEL_CONFIG:-} ]] && teacher_set=("teacher.model=$(realpath "$CFKIT_MODEL_CONFIG")")
mapfile -t bargs < <(sets "${teacher_set[@]}" "${build_set[@]}")
[[ -f $run/cf/manifest.json ]] || $cfkit build-counterfactuals --config "$cfg/build.toml" "${bargs[@]}"
precision=${CFKIT_PRECISION:-tf32}
suffix=""
[[ $precision == tf32 ]] || suffix="-$precision"
suite=(--suite imagenet --root "$evalroot" --cache "$run/suite-cache" --device "$device")
step "evaluation suite: zero-shot"
$cfkit eval --checkpoint "$run/zeroshot" "${suite[@]}" > /dev/null
for m in ${CFKIT_METHODS:-ft ft-fd masked-fd masked-fd-online lp-ft}; do
  step "train $m$suffix"
  mapfile -t targs < <(sets "train.precision=$precision" "output.out=$root/$run/$m$suffix" "${train_set[@]}")
  $cfkit train --config "$cfg/$m.toml" --resume "${targs[@]}"
  step "evaluation suite: $m$suffix"
  $cfkit eval --checkpoint "$run/$m$suffix/checkpoints/best" "${suite[@]}" > /dev/null
done
# The reference's WiSE-FT interpolates with the fine-tuned run's last checkpoint (ckpt-last.pt).
for m in ft masked-fd; do
  m=$m$suffix
  [[ -d $run/$m/checkpoints/last ]] || continue
  step "WiSE-FT: zero-shot <-> $m"
  [[ -f $run/wise-ft-$m/wise-ft.json ]] || $cfkit wise-ft --zeroshot "$run/zeroshot" \
    --finetuned "$run/$m/checkpoints/last" --alpha "${CFKIT_ALPHAS:-0:1:0.1}" \
    --out "$run/wise-ft-$m" "${suite[@]}" > /dev/null
done
# One table: a row per model (the suite's own markdown rows), then the WiSE-FT sweeps.
$python -m cfkit_tools.imagenet_chain table "$run"
