#!/usr/bin/env python3
"""Generates the parity fixtures that cfkit's Rust models are checked against.

Reference implementations: Hugging Face transformers' CLIPModel and open_clip's CLIP, randomly
initialised (no pretrained weights can be fetched here), plus plain PyTorch implementations of
the CAM rules of DESIGN.md §3 and of the no-fill forwards (key mask, token drop), themselves first
checked against transformers' output.

Usage (from the repo root, with the project venv):
    python tests/parity/make_fixtures.py --case tiny --out tests/fixtures/parity
    python tests/parity/make_fixtures.py --case vit-b-32 --out target/parity

Each case writes <case>/config.json, <case>/hf.safetensors (HF names), <case>/open_clip.safetensors
(open_clip names, a different random model), <case>/expected_hf.safetensors,
<case>/expected_open_clip.safetensors; the tiny case also writes tokenizer.json and templates.json.
`--case open_clip-gelu` writes an open_clip model as open_clip ships it to the Hub (GELU, as
every LAION-2B / DataComp ViT): open_clip_config.json written by open_clip's own
save_config_for_hf, open_clip_model.safetensors (open_clip's state-dict names), a pickled
open_clip_pytorch_model.bin (torch.save; cfkit must refuse it and point to the safetensors), and
expected.safetensors (pixels, image features, tokens, text features).
Weights are rounded to float16 and stored as float16 (to keep committed fixtures small); all
reference computations run in float32 on those rounded values, so Rust sees the same numbers.
"""
import argparse
import json
import math
import os
import pathlib

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import open_clip
from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES
from transformers import CLIPConfig, CLIPModel

CASES = {
    # vision: width, layers, heads, image, patch, proj; text: width, layers, heads (None: none)
    "tiny": dict(vw=64, vl=2, vh=4, image=32, patch=8, proj=32, tw=16, tl=2, th=2, n=3),
    "vit-b-32": dict(vw=768, vl=12, vh=12, image=224, patch=32, proj=512, tw=None, n=2),
}
CLASSES = ["goldfish", "great white shark", "T-shirt/top", "ankle boot"]
TOKENIZER_TEXTS = [
    "a photo of a goldfish.",
    "A Photo   of the  GREAT white shark!",
    "it's a T-shirt/top, isn't it? They're 100% cotton & 3 sizes.",
    "café naïve résumé — ünïcödé 北京 🙂",
    "   leading and trailing spaces   ",
    "&amp; html &lt;entities&gt;",
    "word " * 90,
]


def randomize_(model, seed):
    """Perturb every parameter so that no layer is left at a trivial init (LN = 1/0 etc.)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "logit_scale" in name:
                p.fill_(math.log(100.0))
            elif p.dim() == 1 and ("norm" in name or "ln" in name) and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * noise)
            elif p.dim() == 1:
                p.copy_(0.05 * noise)
            else:
                fan_in = p.shape[-1] if p.dim() == 2 else int(np.prod(p.shape[1:]))
                p.copy_(noise * fan_in ** -0.5 * 1.5)
            p.copy_(p.half().float())  # exactly representable in the float16 file


def hf_model(c, seed):
    text = dict(vocab_size=49408, hidden_size=c["tw"] or 16, intermediate_size=4 * (c["tw"] or 16),
                num_attention_heads=c["th"] if c["tw"] else 2, num_hidden_layers=c["tl"] if c["tw"] else 1,
                max_position_embeddings=77, projection_dim=c["proj"], hidden_act="quick_gelu",
                bos_token_id=49406, eos_token_id=49407, pad_token_id=0)
    vision = dict(hidden_size=c["vw"], intermediate_size=4 * c["vw"], num_attention_heads=c["vh"],
                  num_hidden_layers=c["vl"], image_size=c["image"], patch_size=c["patch"],
                  projection_dim=c["proj"], hidden_act="quick_gelu", layer_norm_eps=1e-5)
    cfg = CLIPConfig(text_config=text, vision_config=vision, projection_dim=c["proj"])
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = CLIPModel(cfg).eval()
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    randomize_(model, seed)
    return model


def open_clip_model(c, seed):
    torch.manual_seed(seed)
    vision = dict(layers=c["vl"], width=c["vw"], head_width=c["vw"] // c["vh"], patch_size=c["patch"],
                  image_size=c["image"])
    text = dict(context_length=77, vocab_size=49408, width=c["tw"] or 16, heads=c["th"] if c["tw"] else 2,
                layers=c["tl"] if c["tw"] else 1)
    model = open_clip.model.CLIP(embed_dim=c["proj"], vision_cfg=vision, text_cfg=text, quick_gelu=True).eval()
    randomize_(model, seed)
    return model


# ---------------------------------------------------------------- plain PyTorch references
def ref_vision(sd, c, pixels, keep=None, key_mask=None, want_attn=False):
    """Functional CLIP ViT over an HF state dict; keep [N,K] drops tokens, key_mask [N,P] masks keys."""
    p = "vision_model."
    d, h = c["vw"], c["vh"]
    x = F.conv2d(pixels, sd[p + "embeddings.patch_embedding.weight"], stride=c["patch"])
    x = x.flatten(2).transpose(1, 2)
    n = x.shape[0]
    cls = sd[p + "embeddings.class_embedding"].expand(n, 1, d)
    x = torch.cat([cls, x], 1) + sd[p + "embeddings.position_embedding.weight"]
    if keep is not None:
        kept = torch.gather(x[:, 1:], 1, keep.unsqueeze(-1).expand(-1, -1, d))
        x = torch.cat([x[:, :1], kept], 1)
    bias = None
    if key_mask is not None:
        full = torch.cat([torch.zeros(n, 1, dtype=torch.bool), key_mask], 1)
        bias = torch.zeros(n, 1, 1, full.shape[1]).masked_fill(full[:, None, None, :], float("-inf"))
    x = F.layer_norm(x, (d,), sd[p + "pre_layrnorm.weight"], sd[p + "pre_layrnorm.bias"], 1e-5)
    attns = []
    for i in range(c["vl"]):
        q = f"{p}encoder.layers.{i}."
        y = F.layer_norm(x, (d,), sd[q + "layer_norm1.weight"], sd[q + "layer_norm1.bias"], 1e-5)
        t = y.shape[1]
        def proj(name):
            return F.linear(y, sd[q + f"self_attn.{name}.weight"], sd[q + f"self_attn.{name}.bias"]).view(n, t, h, d // h).transpose(1, 2)
        qq, kk, vv = proj("q_proj"), proj("k_proj"), proj("v_proj")
        s = (qq * (d // h) ** -0.5) @ kk.transpose(-1, -2)
        if bias is not None:
            s = s + bias
        a = s.softmax(-1)
        attns.append(a)
        o = (a @ vv).transpose(1, 2).reshape(n, t, d)
        x = x + F.linear(o, sd[q + "self_attn.out_proj.weight"], sd[q + "self_attn.out_proj.bias"])
        y = F.layer_norm(x, (d,), sd[q + "layer_norm2.weight"], sd[q + "layer_norm2.bias"], 1e-5)
        y = F.linear(y, sd[q + "mlp.fc1.weight"], sd[q + "mlp.fc1.bias"])
        y = y * torch.sigmoid(1.702 * y)
        x = x + F.linear(y, sd[q + "mlp.fc2.weight"], sd[q + "mlp.fc2.bias"])
    pooled = F.layer_norm(x[:, 0], (d,), sd[p + "post_layernorm.weight"], sd[p + "post_layernorm.bias"], 1e-5)
    feats = pooled @ sd["visual_projection.weight"].T
    return feats, attns


def head_logits(features, weight):
    return (features / features.norm(dim=-1, keepdim=True)) @ weight.T


def mmcam(attns, score):
    """DESIGN §3: R = I; R = R + mean_h(clamp(grad ⊙ A, 0)) @ R per block; CAM = R[CLS, 1:] / (max + 1e-8)."""
    grads = torch.autograd.grad(score, attns, retain_graph=True)
    n, _, t, _ = attns[0].shape
    r = torch.eye(t).expand(n, t, t).clone()
    for a, g in zip(attns, grads):
        r = r + (g * a).clamp(min=0).mean(1) @ r
    cam = r[:, 0, 1:]
    return cam / (cam.max(dim=1, keepdim=True).values + 1e-8)


def gradcam_hooked(encode_image, ln_1, pixels, labels, zs_weight, batch_first=True):
    """GradCAM as the reference computes it (Coxy7/robust-finetuning utils/masking.py get_GradCAM):
    a forward hook on the real model's last-block ln_1 captures its *output* for every token; the
    gradient of the summed label logits w.r.t. it is *summed over all tokens* (class token
    included) per channel; ReLU of the channel sum of weight x activation; the class token's entry
    is dropped; then each image's map is divided by its maximum + 1e-8 (DESIGN §3)."""
    acts = []
    handle = ln_1.register_forward_hook(lambda module, inp, out: acts.append(out))
    try:
        feats = encode_image(pixels)
    finally:
        handle.remove()
    act = acts[0] if batch_first else acts[0].transpose(0, 1)   # N x L x C
    score = head_logits(feats, zs_weight).gather(1, labels[:, None]).sum()
    grad = torch.autograd.grad(score, acts[0])[0]
    grad = grad if batch_first else grad.transpose(0, 1)
    weights = grad.sum(dim=1, keepdim=True)                     # N x 1 x C
    cam = F.relu((weights * act.detach()).sum(dim=2))[:, 1:]     # N x (L-1)
    return cam / (cam.max(dim=1, keepdim=True).values + 1e-8)


def rollout(attns):
    n, _, t, _ = attns[0].shape
    eye = torch.eye(t)
    r = eye.expand(n, t, t).clone()
    for a in attns:
        r = (0.5 * a.mean(1) + 0.5 * eye) @ r
    cam = r[:, 0, 1:]
    return cam / (cam.max(dim=1, keepdim=True).values + 1e-8)


def zeroshot_weight(text_features_fn, tokenizer, logit_scale):
    rows = []
    for cname in CLASSES:
        texts = [t(cname) for t in OPENAI_IMAGENET_TEMPLATES]
        f = text_features_fn(tokenizer(texts))
        f = f / f.norm(dim=-1, keepdim=True)
        m = f.mean(0)
        rows.append(m / m.norm())
    return torch.stack(rows) * logit_scale


def to_hf_state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items() if not k.endswith("position_ids")}


def oc_to_hf_vision(oc, c):
    """open_clip visual weights in HF naming, for reusing the functional reference."""
    sd = oc.state_dict()
    out = {
        "vision_model.embeddings.patch_embedding.weight": sd["visual.conv1.weight"],
        "vision_model.embeddings.class_embedding": sd["visual.class_embedding"],
        "vision_model.embeddings.position_embedding.weight": sd["visual.positional_embedding"],
        "vision_model.pre_layrnorm.weight": sd["visual.ln_pre.weight"],
        "vision_model.pre_layrnorm.bias": sd["visual.ln_pre.bias"],
        "vision_model.post_layernorm.weight": sd["visual.ln_post.weight"],
        "vision_model.post_layernorm.bias": sd["visual.ln_post.bias"],
        "visual_projection.weight": sd["visual.proj"].T,
    }
    for i in range(c["vl"]):
        s, d = f"visual.transformer.resblocks.{i}.", f"vision_model.encoder.layers.{i}."
        for part, w in zip(["q_proj", "k_proj", "v_proj"], sd[s + "attn.in_proj_weight"].chunk(3)):
            out[d + f"self_attn.{part}.weight"] = w
        for part, b in zip(["q_proj", "k_proj", "v_proj"], sd[s + "attn.in_proj_bias"].chunk(3)):
            out[d + f"self_attn.{part}.bias"] = b
        for a, b in [("attn.out_proj", "self_attn.out_proj"), ("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"),
                     ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")]:
            out[d + b + ".weight"] = sd[s + a + ".weight"]
            out[d + b + ".bias"] = sd[s + a + ".bias"]
    return out


def vision_expectations(sd, c, model_features, pixels, labels, zs_weight, seed, gradcam):
    """Checks the functional reference against the library model, then computes MMCAM, rollout and
    no-fill features with it; `gradcam` comes from the real model (gradcam_hooked)."""
    # The graph must reach the attention maps although the weights are plain tensors.
    feats, attns = ref_vision(sd, c, pixels.clone().requires_grad_(True), want_attn=True)
    err = (feats - model_features).abs().max().item()
    assert err < 1e-4, f"functional reference differs from the library model by {err}"
    feats = feats.double().float()  # same values; keeps the graph
    score = head_logits(feats, zs_weight).gather(1, labels[:, None]).sum()
    out = {
        "mmcam": mmcam(attns, score),
        "gradcam": gradcam,
        "rollout": rollout([a.detach() for a in attns]),
    }
    g = torch.Generator().manual_seed(seed + 7)
    n, p = pixels.shape[0], (c["image"] // c["patch"]) ** 2
    key_mask = torch.rand(n, p, generator=g) < 0.4
    key_mask[:, 0] = False  # at least one visible patch
    keep = torch.stack([torch.randperm(p, generator=g)[: p // 2].sort().values for _ in range(n)])
    with torch.no_grad():
        out["key_mask"] = key_mask.to(torch.uint8)
        out["features_key_mask"] = ref_vision(sd, c, pixels, key_mask=key_mask)[0]
        out["keep"] = keep
        out["features_keep"] = ref_vision(sd, c, pixels, keep=keep)[0]
    return out


def save(path, tensors, meta=None):
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, path, metadata=meta)


def make_case(name, out_dir):
    c = CASES[name]
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    has_text = c["tw"] is not None
    cfg = {
        "vision_config": dict(hidden_size=c["vw"], intermediate_size=4 * c["vw"], num_attention_heads=c["vh"],
                              num_hidden_layers=c["vl"], image_size=c["image"], patch_size=c["patch"],
                              projection_dim=c["proj"], layer_norm_eps=1e-5, hidden_act="quick_gelu"),
        "text_config": dict(vocab_size=49408, hidden_size=c["tw"], intermediate_size=4 * c["tw"],
                            num_attention_heads=c["th"], num_hidden_layers=c["tl"], max_position_embeddings=77,
                            projection_dim=c["proj"], layer_norm_eps=1e-5, hidden_act="quick_gelu",
                            eos_token_id=49407) if has_text else None,
    }
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)

    g = torch.Generator().manual_seed(1234)
    n = c["n"]
    pixels = torch.randn(n, 3, c["image"], c["image"], generator=g)
    labels = torch.arange(n) % len(CLASSES)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")

    # ---- Hugging Face transformers
    hf = hf_model(c, seed=1)
    sd = to_hf_state(hf)
    if not has_text:
        sd = {k: v for k, v in sd.items() if k.startswith(("vision_model.", "visual_projection."))}
    save(os.path.join(d, "hf.safetensors"), {k: v.half() for k, v in sd.items()}, {"format": "pt"})
    with torch.no_grad():
        vo = hf.vision_model(pixel_values=pixels)
        hf_feats = hf.visual_projection(vo.pooler_output)
    exp = {"pixels": pixels, "labels": labels, "image_features": hf_feats}
    if has_text:
        def hf_text(tokens):
            with torch.no_grad():
                return hf.text_projection(hf.text_model(input_ids=tokens).pooler_output)
        tokens = tokenizer([t(c_) for c_ in CLASSES[:2] for t in OPENAI_IMAGENET_TEMPLATES[:3]])
        exp["tokens"] = tokens
        exp["text_features"] = hf_text(tokens)
        zs = zeroshot_weight(hf_text, tokenizer, hf.logit_scale.exp().item())
    else:
        zs = torch.randn(len(CLASSES), c["proj"], generator=g) * 10
    exp["zeroshot_weight"] = zs
    exp["zeroshot_logits"] = head_logits(hf_feats, zs)
    hf_gradcam = gradcam_hooked(lambda px: hf.visual_projection(hf.vision_model(pixel_values=px).pooler_output),
                                hf.vision_model.encoder.layers[-1].layer_norm1, pixels, labels, zs)
    exp.update(vision_expectations(sd, c, hf_feats, pixels, labels, zs, seed=1, gradcam=hf_gradcam))
    save(os.path.join(d, "expected_hf.safetensors"), exp, {"classes": json.dumps(CLASSES)})

    # ---- open_clip (a different random model, OpenAI state-dict names)
    oc = open_clip_model(c, seed=2)
    osd = {k: v for k, v in oc.state_dict().items() if k != "attn_mask"}
    if not has_text:
        osd = {k: v for k, v in osd.items() if k.startswith("visual.")}
    save(os.path.join(d, "open_clip.safetensors"), {k: v.half() for k, v in osd.items()})
    with torch.no_grad():
        oc_feats = oc.encode_image(pixels)
    exp = {"pixels": pixels, "labels": labels, "image_features": oc_feats}
    if has_text:
        def oc_text(tokens):
            with torch.no_grad():
                return oc.encode_text(tokens)
        exp["tokens"] = tokenizer(["a photo of a goldfish.", "art of the ankle boot."])
        exp["text_features"] = oc_text(exp["tokens"])
        zs = zeroshot_weight(oc_text, tokenizer, oc.logit_scale.exp().item())
    exp["zeroshot_weight"] = zs
    exp["zeroshot_logits"] = head_logits(oc_feats, zs)
    blocks = oc.visual.transformer
    oc_gradcam = gradcam_hooked(oc.encode_image, blocks.resblocks[-1].ln_1, pixels, labels, zs,
                                batch_first=getattr(blocks, "batch_first", False))
    exp.update(vision_expectations(oc_to_hf_vision(oc, c), c, oc_feats, pixels, labels, zs, seed=2,
                                   gradcam=oc_gradcam))
    save(os.path.join(d, "expected_open_clip.safetensors"), exp, {"classes": json.dumps(CLASSES)})

    if name == "tiny":
        toks = tokenizer(TOKENIZER_TEXTS)
        rows = [[int(i) for i in row if i != 0] for row in toks]
        with open(os.path.join(out_dir, "tokenizer.json"), "w") as f:
            json.dump({"context_length": 77, "texts": TOKENIZER_TEXTS, "ids": rows}, f, ensure_ascii=False)
        with open(os.path.join(out_dir, "templates.json"), "w") as f:
            json.dump([t("{}") for t in OPENAI_IMAGENET_TEMPLATES], f, indent=0)
    print(f"wrote {d}")


# The tiny model of both shipped open_clip cases (nn.GELU: open_clip's default, quick_gelu unset).
SHIPPED_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 8, "heads": 2, "layers": 1},
}


def shipped_open_clip(d, seed, mean, std, preprocess=None):
    """A random tiny open_clip model written into `d` as open_clip's Hub uploads are: its own
    save_config_for_hf (with `mean`/`std`, as create_model sets them, and `preprocess`'s
    interpolation / resize_mode) and the state dict as float16 safetensors. Returns the model with
    those float16-rounded weights (references are computed in float32 on them) and the state dict."""
    from open_clip.push_to_hf_hub import save_config_for_hf

    os.makedirs(d, exist_ok=True)
    torch.manual_seed(seed)
    model = open_clip.model.CLIP(**SHIPPED_CFG).eval()
    assert isinstance(model.visual.transformer.resblocks[0].mlp.gelu, torch.nn.GELU)
    randomize_(model, seed)
    model.visual.image_mean, model.visual.image_std = mean, std
    if preprocess:
        model.visual.preprocess_cfg = preprocess
    save_config_for_hf(model, pathlib.Path(d) / "open_clip_config.json", SHIPPED_CFG)
    sd = {k: v for k, v in model.state_dict().items() if k != "attn_mask"}
    save(os.path.join(d, "open_clip_model.safetensors"), {k: v.half() for k, v in sd.items()})
    model.load_state_dict({k: v.half().float() for k, v in sd.items()}, strict=False)
    return model, sd


def make_open_clip_shipped(out_dir):
    """A tiny open_clip model with nn.GELU, saved as open_clip's Hub uploads are."""
    d = os.path.join(out_dir, "open_clip-gelu")
    model, sd = shipped_open_clip(d, 3, open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD)
    torch.save({"visual.proj": sd["visual.proj"].half()}, os.path.join(d, "open_clip_pytorch_model.bin"))
    g = torch.Generator().manual_seed(4)
    pixels = torch.randn(2, 3, 32, 32, generator=g)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    tokens = tokenizer(["a photo of a goldfish.", "art of the ankle boot."])
    with torch.no_grad():
        exp = {"pixels": pixels, "image_features": model.encode_image(pixels),
               "tokens": tokens, "text_features": model.encode_text(tokens)}
    save(os.path.join(d, "expected.safetensors"), exp)
    print(f"wrote {d}")


# Inputs of the preprocessed case: real photographs of tests/fixtures/preprocess (of both aspects).
PREPROCESS_INPUTS = ["jpeg_224_420_300x240.jpg", "rgb_portrait_83x157.png", "palette_95x67.png"]


def make_open_clip_preprocessed(out_dir):
    """A tiny open_clip GELU model whose preprocessing is not CLIP's (mean = std = 0.5, as
    LAION's ViT-L-14 laion2b_s32b_b82k; bilinear; squash), saved as open_clip ships it, with
    open_clip's own eval transform + encode_image on real images as the reference."""
    from open_clip.transform import PreprocessCfg, image_transform_v2
    from PIL import Image

    d = os.path.join(out_dir, "open_clip-squash")
    pp = PreprocessCfg(size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bilinear",
                       resize_mode="squash")
    model, _ = shipped_open_clip(d, 5, pp.mean, pp.std,
                                 {"interpolation": pp.interpolation, "resize_mode": pp.resize_mode})
    transform = image_transform_v2(pp, is_train=False)
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "preprocess")
    images = []
    for name in PREPROCESS_INPUTS:
        with open(os.path.join(src, name), "rb") as f:
            data = f.read()
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        # The ImageFolder loader converts to RGB first (open_clip's transform would after resizing;
        # on these RGB-convertible files both give one RGB image to resize).
        images.append(transform(Image.open(os.path.join(d, name)).convert("RGB")))
    pixels = torch.stack(images)
    with torch.no_grad():
        exp = {"pixels": pixels, "image_features": model.encode_image(pixels)}
    save(os.path.join(d, "expected.safetensors"), exp, {"inputs": json.dumps(PREPROCESS_INPUTS)})
    print(f"wrote {d}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=sorted(CASES) + ["open_clip-gelu", "open_clip-squash"], default="tiny")
    ap.add_argument("--out", default="tests/fixtures/parity")
    args = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if args.case == "open_clip-gelu":
        make_open_clip_shipped(args.out)
    elif args.case == "open_clip-squash":
        make_open_clip_preprocessed(args.out)
    else:
        make_case(args.case, args.out)


if __name__ == "__main__":
    main()
