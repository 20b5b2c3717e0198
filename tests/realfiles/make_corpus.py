"""Generate the mixed real-file corpus for `tests/realfiles.rs` (cfkit issue 16, item 5).

What it makes
-------------
Real photographs -- the ones shipped inside scikit-image's wheel (`skimage.data`: chelsea, coffee,
astronaut, rocket) and matplotlib's `sample_data/grace_hopper.jpg` -- scaled down (longer side
<= 192 px, Pillow LANCZOS) to keep the fixture small, then written in every encoding torchvision's
default loader (`PIL.Image.open(f).convert("RGB")`) reads in ImageNet-style datasets: baseline,
progressive, grey and CMYK JPEG, JPEG at 4:4:4, 4:2:2 and 4:2:0 chroma subsampling (progressive
4:2:0 too) and one with an EXIF orientation (left unrotated, as Pillow leaves it); RGB, RGBA, LA,
palette (with and without a transparent index), grey with a transparent colour, 1-bit, 16-bit grey
and 16-bit RGB PNG; lossy, lossless and RGBA WebP; 24-bit, 8-bit palette and 1-bit BMP; GIF (an
animated one: only the first frame counts; one with a transparent palette index). Next to them, damaged copies as users' folders hold them: truncated at
50 % / 90 % / all but the last 2 bytes, header only, damage inside a complete JPEG (see
`damaged_jpegs`), an empty file, a text file named `.jpg`, and a PNG named `.jpg` (readable:
formats are sniffed from the bytes).

The verdict of every file is Pillow's: `expected.json` records, per file, whether
`Image.open(f).convert("RGB")` succeeds (else the error), the PIL mode and size, and for the
readable ones the reference preprocessing at S = 64 as the reference code loads images —
torchvision's `ImageFolder` loader converts to RGB first, then CLIP's transforms run:

    Compose([Resize(64, interpolation=BICUBIC), CenterCrop(64)])(Image.open(f).convert("RGB"))

stored as `<file>.expected.png` (lossless). The Rust test requires cfkit to keep exactly the files
Pillow reads, to quarantine the others, and to give the kept ones these pixels exactly.
`--check CFKIT --size S` also compares `cfkit prepare` of the readable files at size S (e.g. 224)
with the same reference computed on the fly, and prints the largest difference per file.

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


def rgb16_png(img):
    """A 16-bit RGB PNG, written by hand (Pillow cannot save one): IHDR bit depth 16, colour type 2,
    samples v * 257 + 100, big-endian, filter 0 on every row."""
    import struct
    import zlib
    arr = np.asarray(img.convert("RGB"), dtype=np.uint16) * 257 + 100
    rows = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(arr.shape[0]))
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", arr.shape[1], arr.shape[0], 16, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows, 9))
            + chunk(b"IEND", b""))


def with_orientation(img, orientation):
    """A JPEG whose EXIF says `orientation` (6: rotate 90 degrees clockwise to display); Pillow's
    `Image.open` ignores it, as torchvision's loader does."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(img, "JPEG", quality=90, exif=exif.tobytes())


def palette_transparent_png(img):
    p = img.convert("P", palette=Image.ADAPTIVE, colors=64)
    arr = np.array(p)
    arr[: arr.shape[0] // 3, : arr.shape[1] // 3] = 7  # index 7 is transparent (tRNS)
    q = Image.fromarray(arr, mode="P")
    q.putpalette(p.getpalette())
    return encode(q, "PNG", transparency=7)


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
        "chelsea-422.jpg": encode(chelsea, "JPEG", quality=85, subsampling=1),
        "coffee-444.jpg": encode(coffee, "JPEG", quality=95, subsampling=0),
        "astronaut-420.jpg": encode(astronaut, "JPEG", quality=80, subsampling=2),
        "chelsea-progressive-420.jpg": encode(chelsea, "JPEG", quality=80, subsampling=2,
                                              progressive=True),
        "rocket-exif-rotated.jpg": with_orientation(rocket, 6),
        "chelsea.png": encode(chelsea, "PNG"),
        "astronaut-rgba.png": encode(rgba, "PNG"),
        "coffee-palette.png": encode(coffee.convert("P", palette=Image.ADAPTIVE), "PNG"),
        "coffee-palette-transparent.png": palette_transparent_png(coffee),
        "astronaut-la.png": encode(rgba.convert("LA"), "PNG"),
        "hopper-grey-transparent.png": encode(hopper.convert("L"), "PNG", transparency=128),
        "rocket-1bit.png": encode(rocket.convert("1"), "PNG"),
        "hopper-grey16.png": grey16(hopper),
        "chelsea-rgb16.png": rgb16_png(chelsea),
        "rocket.webp": encode(rocket, "WEBP", quality=80),
        "coffee-lossless.webp": encode(coffee, "WEBP", lossless=True),
        "astronaut-rgba.webp": encode(rgba, "WEBP", quality=90),
        "chelsea.bmp": encode(chelsea, "BMP"),
        "hopper-palette.bmp": encode(hopper.convert("P", palette=Image.ADAPTIVE), "BMP"),
        "rocket-1bit.bmp": encode(rocket.convert("1"), "BMP"),
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
    out.update(damaged_jpegs(clean["chelsea.jpg"]))
    out["empty.jpg"] = b""
    out["notes-named.jpg"] = b"this is a text file that somebody saved with a .jpg extension\n"
    return out


def damaged_jpegs(jpeg):
    """Damage inside a complete JPEG, where Pillow's verdict is libjpeg's: a stray marker in the
    scan data whose segment would run past the end (readable: libjpeg greys the rest of the scan,
    and running out after the last row is not an error), an out-of-range scan start (readable:
    libjpeg ignores it in a sequential scan), bytes after the end marker (readable), and a reserved
    marker code before the scan (refused)."""
    sos = jpeg.index(b"\xff\xda")
    scan = sos + 2 + int.from_bytes(jpeg[sos + 2: sos + 4], "big")
    mid = (scan + len(jpeg)) // 2
    stray = jpeg[:mid] + b"\xff\xe0\x7f\xff" + jpeg[mid + 4:]
    n_comp = jpeg[sos + 4]
    ss = sos + 5 + 2 * n_comp  # Ss follows the component selectors
    bad_ss = jpeg[:ss] + bytes([126]) + jpeg[ss + 1:]
    reserved = jpeg[:sos] + b"\xff\x02\x00\x04\x00\x00" + jpeg[sos:]
    return {
        "chelsea-stray-marker.jpg": stray,
        "chelsea-bad-scan-start.jpg": bad_ss,
        "chelsea-trailing-bytes.jpg": jpeg + b"\x00" * 100 + b"trailing data after the end marker",
        "chelsea-reserved-marker.jpg": reserved,
    }


def pil_verdict(data):
    try:
        with Image.open(io.BytesIO(data)) as im:
            mode, size = im.mode, im.size
            im.convert("RGB")  # decodes every pixel: a truncated file fails here, as in a loader
        return {"readable": True, "mode": mode, "width": size[0], "height": size[1]}, None
    except Exception as e:  # noqa: BLE001 -- any failure means torchvision's loader fails
        return {"readable": False, "error": f"{type(e).__name__}: {e}"}, None


def reference(data, size=SIZE):
    """The reference code's loading: torchvision's ImageFolder loader (`pil_loader`: open, then
    `convert("RGB")`), then CLIP's Resize(size, BICUBIC) + CenterCrop(size)."""
    tf = transforms.Compose([
        transforms.Resize(size, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(size),
    ])
    with Image.open(io.BytesIO(data)) as im:
        return tf(im.convert("RGB"))


def check(cfkit, size):
    """`cfkit prepare` of every readable corpus file at `size` against `reference(data, size)`:
    prints the largest absolute difference per file and returns the largest overall."""
    import subprocess
    import tempfile
    import pyarrow.parquet as pq
    index = json.loads((OUT / "expected.json").read_text())["files"]
    names = [n for n, v in sorted(index.items()) if v["readable"]]
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp) / "tree" / "corpus"
        folder.mkdir(parents=True)
        for n in names:
            (folder / n).write_bytes((OUT / n).read_bytes())
        out = pathlib.Path(tmp) / "shards"
        subprocess.run([cfkit, "prepare", "--image-folder", str(folder.parent), "--split", "x",
                        "--out", str(out), "--image-size", str(size), "-q"], check=True,
                       stdout=subprocess.DEVNULL)
        got = {}
        for shard in sorted(out.glob("data/*.parquet")):
            for row in pq.read_table(shard, columns=["id", "image"]).to_pylist():
                got[row["id"].rsplit("/", 1)[-1]] = Image.open(io.BytesIO(row["image"]["bytes"]))
    worst = 0
    for n in names:
        want = np.asarray(reference((OUT / n).read_bytes(), size), dtype=np.int16)
        have = np.asarray(got[n].convert("RGB"), dtype=np.int16)
        d = int(np.abs(want - have).max()) if want.shape == have.shape else 255
        worst = max(worst, d)
        print(f"{n:36} {index[n]['mode']:6} max-abs {d}")
    print(f"{len(names)} files at {size} px: largest difference {worst}")
    return worst


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", metavar="CFKIT", help="compare cfkit prepare with the reference")
    ap.add_argument("--size", type=int, default=224)
    a = ap.parse_args()
    if a.check:
        raise SystemExit(1 if check(a.check, a.size) else 0)
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
