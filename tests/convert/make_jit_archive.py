"""Make an OpenAI-style TorchScript CLIP archive on random weights, and the reference outputs that
`tests/convert.rs` checks `cfkit convert` + `cfkit zeroshot-head` against (issue 16, item 4).

OpenAI distributes CLIP as TorchScript archives (`ViT-B-32.pt`: `torch.jit.save` of the whole
model, parameters in float16, open_clip/OpenAI state-dict names). This script builds the same kind
of file from the reference implementation's model -- open_clip's `CLIP` with QuickGELU, which has
OpenAI's module layout and names -- at a tiny size with seeded random weights, scripted with
`torch.jit.script` and saved with its parameters in float16, as OpenAI's are.

Writes into --out:
  clip-tiny.pt            the TorchScript archive
  config.json             cfkit model config of the same shape (vision + text towers)
  classes.txt             3 class names; templates.txt: 2 prompt templates
  reference.safetensors   images [4, 3, 32, 32] (CLIP-normalised inputs), features [4, 32]
                          (`encode_image`, not normalised) and logits [4, 3] of open_clip's own
                          zero-shot classifier (`build_zero_shot_classifier`, same classes and
                          templates, logit scale 100), all computed in float32 on the
                          float16-rounded weights that the archive holds.

Run from the repository root with the project venv (the test runs it into a temporary dir):
    .venv/bin/python tests/convert/make_jit_archive.py --out DIR
"""

import argparse
import json
import math
import pathlib

import open_clip
import torch
from open_clip.zero_shot_classifier import build_zero_shot_classifier
from safetensors.torch import save_file

VISION = dict(image_size=32, layers=2, width=64, patch_size=8, head_width=16)
TEXT = dict(context_length=77, vocab_size=49408, width=16, heads=2, layers=2)
EMBED = 32
CLASSES = ["goldfish", "great white shark", "espresso"]
TEMPLATES = ["a photo of a {}.", "a sketch of the {}."]


def randomize_(model, seed):
    """Seeded random weights away from trivial inits, rounded to float16 values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if name == "logit_scale":
                p.fill_(math.log(100.0))
            elif p.dim() == 1 and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * noise)
            elif p.dim() == 1:
                p.copy_(0.05 * noise)
            else:
                p.copy_(noise / math.sqrt(p.shape[-1]))
            p.copy_(p.half().float())


def cfkit_config():
    return {
        "vision_config": {
            "hidden_size": VISION["width"],
            "intermediate_size": 4 * VISION["width"],
            "num_attention_heads": VISION["width"] // VISION["head_width"],
            "num_hidden_layers": VISION["layers"],
            "image_size": VISION["image_size"],
            "patch_size": VISION["patch_size"],
            "projection_dim": EMBED,
            "layer_norm_eps": 1e-5,
            "hidden_act": "quick_gelu",
        },
        "text_config": {
            "vocab_size": TEXT["vocab_size"],
            "hidden_size": TEXT["width"],
            "intermediate_size": 4 * TEXT["width"],
            "num_attention_heads": TEXT["heads"],
            "num_hidden_layers": TEXT["layers"],
            "max_position_embeddings": TEXT["context_length"],
            "projection_dim": EMBED,
            "layer_norm_eps": 1e-5,
            "hidden_act": "quick_gelu",
            "eos_token_id": 49407,
        },
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=16)
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    model = open_clip.CLIP(embed_dim=EMBED, vision_cfg=VISION, text_cfg=TEXT, quick_gelu=True)
    randomize_(model, args.seed)
    model.eval()
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    g = torch.Generator().manual_seed(args.seed + 1)
    images = torch.randn(4, 3, VISION["image_size"], VISION["image_size"], generator=g)
    with torch.no_grad():
        features = model.encode_image(images)
        classifier = build_zero_shot_classifier(
            model, tokenizer, CLASSES, [lambda c, t=t: t.format(c) for t in TEMPLATES],
            num_classes_per_batch=None, device="cpu", use_tqdm=False)
        logits = model.logit_scale.exp() * torch.nn.functional.normalize(features, dim=-1) @ classifier
    scripted = torch.jit.script(model.half())
    torch.jit.save(scripted, str(out / "clip-tiny.pt"))
    save_file({"images": images.contiguous(), "features": features.contiguous(),
               "logits": logits.contiguous()}, str(out / "reference.safetensors"))
    (out / "config.json").write_text(json.dumps(cfkit_config(), indent=1) + "\n")
    (out / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    (out / "templates.txt").write_text("\n".join(TEMPLATES) + "\n")
    print(f"wrote {out}/clip-tiny.pt ({(out / 'clip-tiny.pt').stat().st_size} bytes)")


if __name__ == "__main__":
    main()
