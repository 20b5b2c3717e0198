"""Generate the CLIP-preprocessing parity fixtures for `pipeline/src/preprocess.rs`.

What it makes
-------------
Deterministic synthetic images (gradients + sinusoidal texture + hard-edged shapes + noise, so the
antialiased bicubic kernel and its clipping are exercised) in the shapes and encodings real datasets
contain: odd sizes, portrait, landscape, tiny (7x5), huge aspect ratios (3000x40, 2x300), exactly
S x S, smaller than S, big downscale factors, grey (L), grey+alpha (LA), RGBA with varying alpha
(including fully transparent and fully opaque regions), 16-bit grey and 16-bit RGB PNGs, a palette
PNG (with and without transparency), a 1-bit PNG, grey and RGB PNGs with a tRNS colour key, a baseline 4:2:0 JPEG, a progressive JPEG and a
CMYK JPEG, in baseline 4:4:4, 4:2:2 and 4:2:0 and progressive. For each input it writes the
reference output of the reference's loading (torchvision's ImageFolder loader, `convert("RGB")` on
every file before any transform) followed by OpenAI CLIP / open_clip preprocessing:

    Compose([Resize(S, interpolation=InterpolationMode.BICUBIC), CenterCrop(S)])(
        PIL.Image.open(file).convert("RGB"))

as an S x S RGB8 PNG (lossless, so the Rust test reads it with the `image` crate). Every fixture must
match byte for byte, whatever its mode: cfkit converts to RGB as Pillow does (palette colours with the
transparent index keeping its colour, 1-bit, L, LA and RGBA with alpha dropped, CMYK, 16-bit grey
clipped to 255 and 16-bit RGB truncated to its high byte, both as Pillow 13 opens them) and decodes
JPEGs with libjpeg-turbo's algorithm (accurate integer IDCT, fancy upsampling).

For every input that is not an 8-bit RGB PNG it also stores Pillow's decoded RGB pixels
(`Image.open(f).convert("RGB")`) as `<name>.pil.png`, so the test checks decoding and conversion on
their own, before any resampling.

Output: tests/fixtures/preprocess/ (relative to the repository root): the inputs, the
`*.expected.png` files, `*.pil.png` decoded references, and `index.tsv` with one line per fixture:

    input  size  expected  expected_h  expected_w  expected_c  kind  decoded_ref_or_-

How to rerun (from the repository root; needs torch, torchvision, pillow, numpy):

    .venv/bin/python tests/preprocess/make_fixtures.py

Everything is seeded; rerunning with the same Pillow/libjpeg versions reproduces the same bytes.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Resize

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "preprocess"


def reference(size: int):
    """ImageFolder's loader, then CLIP preprocessing up to (not including) ToTensor/Normalize."""
    clip = Compose([Resize(size, interpolation=InterpolationMode.BICUBIC), CenterCrop(size)])
    return lambda im: clip(im.convert("RGB"))


def natural(h: int, w: int, seed: int, channels: int = 3, noise: float = 5.0) -> np.ndarray:
    """Natural-looking uint8 content, shape (h, w, channels); `noise` is the Gaussian sigma."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    yn, xn = y / max(h - 1, 1), x / max(w - 1, 1)
    out = np.empty((h, w, channels), np.float64)
    for c in range(channels):
        a, b, f1, f2, ph = rng.uniform(-1, 1, 5)
        base = 128 + 70 * (a * xn + b * yn)
        tex = 25 * np.sin(2 * np.pi * (3 + 6 * abs(f1)) * xn + ph) * np.cos(
            2 * np.pi * (2 + 5 * abs(f2)) * yn
        )
        out[..., c] = base + tex
    # hard-edged shapes: rectangles and discs, with saturated colours (exercise clip8)
    for _ in range(6):
        colour = rng.choice([0.0, 255.0, 40.0, 220.0], size=channels)
        if rng.random() < 0.5:
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            y1, x1 = y0 + rng.integers(1, max(2, h // 3)), x0 + rng.integers(1, max(2, w // 3))
            out[y0:y1, x0:x1] = colour
        else:
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(1, max(2, min(h, w) / 4))
            out[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = colour
    # one-pixel lines
    out[h // 2, :] = 255
    out[:, w // 3] = 0
    out += rng.normal(0, noise, out.shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def write_png16(path: Path, arr: np.ndarray) -> None:
    """Minimal 16-bit PNG writer (grey (h, w) or RGB (h, w, 3)); Pillow cannot write 16-bit RGB."""
    arr = np.asarray(arr, dtype=">u2")
    h, w = arr.shape[:2]
    colour_type = 0 if arr.ndim == 2 else 2
    raw = b"".join(b"\x00" + arr[r].tobytes() for r in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        if old.is_file():
            old.unlink()
    rows: list[str] = []

    def emit(name: str, size: int, kind: str) -> None:
        """Compute the reference output for OUT/name and record it in the index."""
        src = Image.open(OUT / name)
        decoded_ref = kind != "png_rgb"
        exp = reference(size)(src)
        assert exp.mode == "RGB" and exp.size == (size, size), (name, exp.mode, exp.size)
        stem = name.rsplit(".", 1)[0]
        exp_name = f"{stem}.expected.png"
        # re-wrap so no metadata (e.g. a tRNS colour key from `info`) is written with the pixels
        Image.fromarray(np.asarray(exp)).save(OUT / exp_name, optimize=True)
        ref = "-"
        if decoded_ref:
            ref = f"{stem}.pil.png"
            rgb = np.asarray(Image.open(OUT / name).convert("RGB"))  # re-wrapped: no tRNS
            Image.fromarray(rgb).save(OUT / ref, optimize=True)
        rows.append(f"{name}\t{size}\t{exp_name}\t{size}\t{size}\t3\t{kind}\t{ref}")

    def save8(name: str, arr: np.ndarray, size: int, kind: str) -> None:
        """Save a uint8 (h, w) grey or (h, w, 3) RGB array as PNG and record its reference."""
        Image.fromarray(arr).save(OUT / name, optimize=True)
        emit(name, size, kind)

    # --- 8-bit RGB PNGs (must match exactly) --------------------------------------------------
    save8("rgb_landscape_101x77.png", natural(77, 101, 1), 64, "png_rgb")
    save8("rgb_portrait_83x157.png", natural(157, 83, 2), 64, "png_rgb")
    # Pillow 13 runs the vertical pass first when h - out_h > 2 * (w - out_w) (Pillow#9549)
    save8("rgb_tall_vfirst_90x400.png", natural(400, 90, 29, noise=2.0), 64, "png_rgb")
    save8("rgb_tiny_7x5.png", natural(5, 7, 3), 64, "png_rgb")
    save8("rgb_wide_3000x40.png", natural(40, 3000, 4, noise=1.5), 64, "png_rgb")
    save8("rgb_tall_2x300.png", natural(300, 2, 5), 64, "png_rgb")
    save8("rgb_one_1x1.png", natural(1, 1, 6), 64, "png_rgb")
    save8("rgb_exact_64x64.png", natural(64, 64, 7), 64, "png_rgb")
    save8("rgb_small_50x40.png", natural(40, 50, 8), 64, "png_rgb")
    save8("rgb_downscale_517x389.png", natural(389, 517, 9, noise=1.0), 64, "png_rgb")
    save8("rgb_224_331x250.png", natural(250, 331, 10, noise=1.5), 224, "png_rgb")
    save8("rgb_224_exact_short_224x257.png", natural(257, 224, 11, noise=1.5), 224, "png_rgb")

    # --- grey, grey+alpha, RGBA ---------------------------------------------------------------
    save8("l_90x120.png", natural(120, 90, 12, 1)[..., 0], 64, "png_l")
    alpha_rng = np.random.default_rng(13)
    la = np.dstack([natural(230, 80, 14, 1)[..., 0], natural(230, 80, 15, 1)[..., 0]])
    la[:10, :, 1] = 0          # fully transparent band
    la[-10:, :, 1] = 255       # fully opaque band
    Image.fromarray(la, "LA").save(OUT / "la_vfirst_80x230.png", optimize=True)
    emit("la_vfirst_80x230.png", 64, "png_la")
    for name, h, w, size, seed in [("rgba_120x90.png", 90, 120, 64, 16),
                                   ("rgba_224_upscale_181x150.png", 150, 181, 224, 17)]:
        rgba = np.dstack([natural(h, w, seed), natural(h, w, seed + 100, 1)])
        rgba[: h // 6, :, 3] = 0
        rgba[-h // 6:, :, 3] = 255
        rgba[:, : w // 8, 3] = alpha_rng.integers(0, 256, (h, w // 8))
        Image.fromarray(rgba, "RGBA").save(OUT / name, optimize=True)
        emit(name, size, "png_rgba")

    # --- colour-key transparency (tRNS on grey/RGB): Pillow keeps mode L/RGB and ignores it --------
    Image.fromarray(natural(45, 66, 27)).save(OUT / "rgb_trns_66x45.png", transparency=(255, 255, 255))
    emit("rgb_trns_66x45.png", 64, "png_rgb")
    Image.fromarray(natural(80, 59, 28, 1)[..., 0]).save(OUT / "l_trns_59x80.png", transparency=255)
    emit("l_trns_59x80.png", 64, "png_l")

    # --- palette and 1-bit ---------------------------------------------------------------------
    pal = Image.fromarray(natural(67, 95, 18)).quantize(colors=48, dither=Image.Dither.NONE)
    pal.save(OUT / "palette_95x67.png", optimize=True)
    emit("palette_95x67.png", 64, "png_palette")
    palt = Image.fromarray(natural(150, 41, 19)).quantize(colors=16, dither=Image.Dither.NONE)
    palt.save(OUT / "palette_trns_41x150.png", optimize=True, transparency=3)
    emit("palette_trns_41x150.png", 64, "png_palette")
    bits = (natural(70, 111, 20, 1)[..., 0] > 128).astype(np.uint8) * 255
    Image.fromarray(bits).convert("1", dither=Image.Dither.NONE).save(OUT / "bit1_111x70.png")
    emit("bit1_111x70.png", 64, "png_palette")

    # --- 16-bit: Pillow opens grey as "I;16" (convert("RGB") clips at 255), RGB as v >> 8 ----------
    rng16 = np.random.default_rng(21)
    g16 = natural(70, 100, 22, 1)[..., 0].astype(np.int64) + rng16.integers(-3, 4, (70, 100))
    # mostly small values (as in depth or scientific images stored in the low byte) plus a bright
    # block, so both sides of the clip are covered
    g16[:20, :30] = g16[:20, :30] * 257
    write_png16(OUT / "grey16_100x70.png", np.clip(g16, 0, 65535).astype(np.uint16))
    emit("grey16_100x70.png", 64, "png16_l")
    c16 = natural(100, 70, 23).astype(np.uint32) * 257 + rng16.integers(-128, 129, (100, 70, 3))
    write_png16(OUT / "rgb16_70x100.png", np.clip(c16, 0, 65535).astype(np.uint16))
    emit("rgb16_70x100.png", 64, "png16_rgb")

    # --- JPEGs: libjpeg-turbo's decoding (ISLOW IDCT, fancy upsampling) --------------------------
    Image.fromarray(natural(97, 130, 24)).save(OUT / "jpeg_progressive_130x97.jpg", quality=90,
                                               progressive=True)
    emit("jpeg_progressive_130x97.jpg", 64, "jpeg_rgb")
    for name, h, w, size, seed, subsampling in [
        ("jpeg_224_420_300x240.jpg", 240, 300, 224, 25, 2),
        ("jpeg_422_odd_131x93.jpg", 93, 131, 64, 30, 1),
        ("jpeg_444_77x101.jpg", 101, 77, 64, 31, 0),
        ("jpeg_420_odd_tiny_9x7.jpg", 7, 9, 64, 32, 2),
    ]:
        Image.fromarray(natural(h, w, seed, noise=2.0)).save(OUT / name, quality=90,
                                                             subsampling=subsampling)
        emit(name, size, "jpeg_rgb")
    Image.fromarray(natural(83, 61, 33, 1)[..., 0]).save(OUT / "jpeg_grey_61x83.jpg", quality=85)
    emit("jpeg_grey_61x83.jpg", 64, "jpeg_l")
    Image.fromarray(natural(72, 96, 26, 4), "CMYK").save(OUT / "jpeg_cmyk_96x72.jpg", quality=95)
    emit("jpeg_cmyk_96x72.jpg", 64, "jpeg_cmyk")

    (OUT / "index.tsv").write_text(
        "# generated by tests/preprocess/make_fixtures.py; do not edit\n"
        "# input\tsize\texpected\texpected_h\texpected_w\texpected_c\tkind\tdecoded_ref\n"
        + "\n".join(rows) + "\n"
    )
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(rows)} fixtures to {OUT} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
