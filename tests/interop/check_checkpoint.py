#!/usr/bin/env python3
"""Loads a cfkit checkpoint directory with Hugging Face transformers and scores a shard split.

Usage: check_checkpoint.py CKPT DATASET_DIR SPLIT

`CLIPVisionModelWithProjection.from_pretrained(CKPT)` reads model.safetensors + config.json; the
head (head.weight [C, E], head.bias [C]) comes from head.safetensors and is applied as cfkit does:
logits = W · (f / |f|) + b on the projected image embedding f. Images are the split's stored PNGs
(pyarrow + PIL), scaled to [0, 1] and normalised with CLIP's mean and std. Prints one JSON line:
{"images": N, "correct": K, "loading_info": {missing_keys, unexpected_keys, ...}} so the Rust side can compare with `cfkit eval`.
"""
import io
import json
import os
import sys

import numpy as np
import pyarrow.parquet as pq
import torch
from PIL import Image
from safetensors.torch import load_file
from transformers import CLIPVisionModelWithProjection

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def main():
    ckpt, dataset, split = sys.argv[1:4]
    model, info = CLIPVisionModelWithProjection.from_pretrained(ckpt, output_loading_info=True)
    model = model.eval()
    head = load_file(os.path.join(ckpt, "head.safetensors"))
    manifest = json.load(open(os.path.join(dataset, "manifest.json")))
    n = correct = 0
    for shard in manifest["splits"][split]["shards"]:
        table = pq.read_table(os.path.join(dataset, shard["file"]), columns=["image", "label"])
        images = table.column("image").to_pylist()
        labels = table.column("label").to_pylist()
        for start in range(0, len(images), 256):
            batch = [
                np.asarray(Image.open(io.BytesIO(im["bytes"])).convert("RGB"), dtype=np.float32) / 255.0
                for im in images[start : start + 256]
            ]
            x = (np.stack(batch) - CLIP_MEAN) / CLIP_STD
            x = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
            with torch.no_grad():
                f = model(pixel_values=x).image_embeds
                logits = (f / f.norm(dim=-1, keepdim=True)) @ head["head.weight"].T + head["head.bias"]
            pred = logits.argmax(-1).tolist()
            correct += sum(int(p == l) for p, l in zip(pred, labels[start : start + 256]))
            n += len(batch)
    loading = {k: sorted(map(str, v)) for k, v in info.items()}
    print(json.dumps({"images": n, "correct": correct, "loading_info": loading}))


if __name__ == "__main__":
    main()
