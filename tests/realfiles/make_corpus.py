"""Generate the mixed real-file corpus for `tests/realfiles.rs` (cfkit issue 16, item 5).

What it makes
-------------
Real photographs -- the ones shipped inside scikit-image's wheel (`skimage.data`: chelsea, coffee,
astronaut, rocket) and matplotlib's `sample_data/grace_hopper.jpg` -- scaled down (longer side
<= 192 px, Pillow LANCZOS) to keep the fixture small, then written in every encoding torchvision's
default loader (`PIL.Image.open(f).convert("RGB")`) reads in ImageNet-style datasets: baseline,
progressive, grey and CMYK JPEG; RGB, RGBA, palette and 16-bit grey PNG; lossy, lossless and RGBA
WebP; 24-bit and 8-bit palette BMP; GIF (an animated one: only the first frame counts; one with a
transparent palette index). Next to them, damaged copies as users' folders hold them: truncated at
50 % / 90 % / all but the last 2 bytes, header only, an empty file, a text file named `.jpg`, and a
PNG named `.jpg` (readable: formats are sniffed from the bytes).

The verdict of every file is Pillow's: `expected.json` records, per file, whether
`Image.open(f).convert("RGB")` succeeds (else the error), the PIL mode and size, and for the
readable ones the reference CLIP preprocessing at S = 64,

    Compose([Resize(64, interpolation=BICUBIC), CenterCrop(64), lambda im: im.convert("RGB")])

stored as `<file>.expected.png` (lossless). The Rust test requires cfkit to keep exactly the files
Pillow reads and to quarantine the others, and compares the kept ones with these outputs (exact
where decoders agree, within a stated tolerance for JPEG and lossy WebP, whose decoders differ).

Output: tests/fixtures/realfiles/ (relative to the repository root). Rerun from the root:

    .venv/bin/python tests/realfiles/make_corpus.py

Deterministic for a given Pillow / libjpeg-turbo / libwebp (Pillow 13.0.0 here).
"""

import io
import json
import pathlib

import matplotlib
import numpy as np
import PIL
import skimage.data
import torch
import torchvision
from PIL import Image
from torchvision import transforms

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "realfiles"
SIZE = 64
MAX_SIDE = 192


def photo(name):
    if name == "grace_hopper":
        path = pathlib.Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        img = Image.open(path).convert("RGB")
    else:
        img = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
    scale = MAX_SIDE / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.LANCZOS)


def encode(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def animated_gif(a, b):
    buf = io.BytesIO()
    frames = [a.convert("P", palette=Image.ADAPTIVE), b.convert("P", palette=Image.ADAPTIVE)]
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def transparent_gif(img):
    p = img.convert("P", palette=Image.ADAPTIVE, colors=64)
    arr = np.array(p)
    arr[: arr.shape[0] // 3, : arr.shape[1] // 3] = 5  # a block of palette index 5, marked transparent
    q = Image.fromarray(arr, mode="P")
    q.putpalette(p.getpalette())
    return encode(q, "GIF", transparency=5)


def grey16(img):
    arr = (np.asarray(img.convert("L"), dtype=np.uint16) * 257 + 128).clip(0, 65535)
    return encode(Image.fromarray(arr.astype(np.uint16)), "PNG")


def clean_files():
    chelsea, coffee = photo("chelsea"), photo("coffee")
    astronaut, rocket = photo("astronaut"), photo("rocket")
    hopper = photo("grace_hopper")
    rgba = astronaut.copy()
    alpha = Image.linear_gradient("L").resize(rgba.size)
    rgba.putalpha(alpha)
    return {
        "chelsea.jpg": encode(chelsea, "JPEG", quality=90),
        "coffee-progressive.jpg": encode(coffee, "JPEG", quality=85, progressive=True),
        "hopper-grey.jpg": encode(hopper.convert("L"), "JPEG", quality=90),
        "astronaut-cmyk.jpg": encode(astronaut.convert("CMYK"), "JPEG", quality=92),
        "rocket-420.jpg": encode(rocket, "JPEG", quality=75, subsampling=2),
        "chelsea.png": encode(chelsea, "PNG"),
        "astronaut-rgba.png": encode(rgba, "PNG"),
        "coffee-palette.png": encode(coffee.convert("P", palette=Image.ADAPTIVE), "PNG"),
        "hopper-grey16.png": grey16(hopper),
        "rocket.webp": encode(rocket, "WEBP", quality=80),
        "coffee-lossless.webp": encode(coffee, "WEBP", lossless=True),
        "astronaut-rgba.webp": encode(rgba, "WEBP", quality=90),
        "chelsea.bmp": encode(chelsea, "BMP"),
        "hopper-palette.bmp": encode(hopper.convert("P", palette=Image.ADAPTIVE), "BMP"),
        "rocket-animated.gif": animated_gif(rocket, chelsea.resize(rocket.size)),
        "coffee-transparent.gif": transparent_gif(coffee),
        # A PNG saved under a JPEG name: readable (formats are sniffed from the bytes).
        "chelsea-png-named.jpg": encode(chelsea, "PNG"),
    }


def damaged_files(clean):
    out = {}
    for name in ["chelsea.jpg", "coffee-progressive.jpg", "astronaut-cmyk.jpg", "chelsea.png",
                 "rocket.webp", "coffee-lossless.webp", "chelsea.bmp", "rocket-animated.gif"]:
        data = clean[name]
        stem, ext = name.rsplit(".", 1)
        out[f"{stem}-cut50.{ext}"] = data[: len(data) // 2]
        out[f"{stem}-cut90.{ext}"] = data[: len(data) * 9 // 10]
        out[f"{stem}-cut2.{ext}"] = data[:-2]
    out["chelsea-header-only.jpg"] = clean["chelsea.jpg"][:200]
    out["empty.jpg"] = b""
    out["notes-named.jpg"] = b"this is a text file that somebody saved with a .jpg extension\n"
    return out


def pil_verdict(data):
    try:
        with Image.open(io.BytesIO(data)) as im:
            mode, size = im.mode, im.size
            im.convert("RGB")  # decodes every pixel: a truncated file fails here, as in a loader
        return {"readable": True, "mode": mode, "width": size[0], "height": size[1]}, None
    except Exception as e:  # noqa: BLE001 -- any failure means torchvision's loader fails
        return {"readable": False, "error": f"{type(e).__name__}: {e}"}, None


def reference(data):
    """Pillow + torchvision CLIP preprocessing. 16-bit grey (mode I;16) is first scaled to 8 bits as
    round(v / 257), cfkit's documented deviation (Pillow's convert clips every value above 255)."""
    tf = transforms.Compose([
        transforms.Resize(SIZE, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(SIZE),
        lambda im: im.convert("RGB"),
    ])
    with Image.open(io.BytesIO(data)) as im:
        if im.mode == "I;16":
            arr = (np.asarray(im, dtype=np.uint32) + 128) // 257
            return tf(Image.fromarray(arr.astype(np.uint8), mode="L"))
        return tf(im)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    clean = clean_files()
    files = {**clean, **damaged_files(clean)}
    index = {}
    for name, data in sorted(files.items()):
        (OUT / name).write_bytes(data)
        verdict, _ = pil_verdict(data)
        if verdict["readable"]:
            reference(data).save(OUT / f"{name}.expected.png")
        index[name] = verdict
    meta = {
        "generator": "tests/realfiles/make_corpus.py",
        "size": SIZE,
        "pillow": PIL.__version__,
        "torchvision": torchvision.__version__,
        "torch": torch.__version__,
        "files": index,
    }
    (OUT / "expected.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    kept = sum(v["readable"] for v in index.values())
    print(f"{len(index)} files ({kept} readable by Pillow, {len(index) - kept} not) in {OUT}")


if __name__ == "__main__":
    main()
