"""Damaged JPEGs by the thousand: does cfkit keep exactly what Pillow reads, with Pillow's pixels?

For `just check-damaged-jpegs`. Five real photographs' JPEGs (baseline 4:2:0, progressive, grey,
Adobe CMYK, 4:4:4 with restart markers; scikit-image's chelsea and coffee, scaled down) are damaged
at seeded random places in five ways: random bytes anywhere, random bytes in the headers, a cut at a
random length, a random marker (0xFF + any byte) in the scan data, random bytes inserted. Each file
goes through the reference's loading (ImageFolder's `Image.open(f).convert("RGB")`, then CLIP's
`Resize(64, BICUBIC)` + `CenterCrop(64)`) and through `cfkit prepare --image-size 64`. It reports
how many files each side keeps, every file only one side keeps, and every kept file whose pixels
differ; it exits non-zero on any disagreement.

    .venv/bin/python tests/realfiles/damaged_jpegs.py --cfkit target/release/cfkit [--per-base N] [--seed S]
"""
import argparse
import io
import json
import pathlib
import random
import subprocess
import tempfile

import numpy as np
import pyarrow.parquet as pq
import skimage.data
from PIL import Image
from torchvision import transforms


def encode(img, **kw):
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kw)
    return buf.getvalue()


def bases():
    chelsea = Image.fromarray(skimage.data.chelsea()).resize((150, 100))
    coffee = Image.fromarray(skimage.data.coffee()).resize((120, 80))
    return {
        "baseline-420": encode(chelsea, quality=85),
        "progressive": encode(coffee, quality=85, progressive=True),
        "grey": encode(chelsea.convert("L"), quality=85),
        "cmyk": encode(coffee.convert("CMYK"), quality=90),
        "444-restarts": encode(chelsea, quality=85, subsampling=0, restart_marker_rows=1),
    }


def damage(src, kind, rng):
    b = bytearray(src)
    if kind == "bytes":
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(2, len(b))] = rng.randrange(256)
    elif kind == "header-bytes":
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(2, min(len(b), 650))] = rng.randrange(256)
    elif kind == "cut":
        b = b[: rng.randrange(2, len(b))]
    elif kind == "marker-in-scan":
        p = rng.randrange(min(600, len(b) - 4), len(b) - 4)
        b[p], b[p + 1] = 0xFF, rng.randrange(256)
    else:  # insert
        p = rng.randrange(2, len(b))
        b[p:p] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    return bytes(b)


def reference(data):
    tf = transforms.Compose([transforms.Resize(64, interpolation=transforms.InterpolationMode.BICUBIC),
                             transforms.CenterCrop(64)])
    try:
        return np.asarray(tf(Image.open(io.BytesIO(data)).convert("RGB")))
    except Exception as e:  # noqa: BLE001 -- whatever Pillow raises, the loader refuses the file
        return f"{type(e).__name__}: {e}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cfkit", required=True)
    ap.add_argument("--per-base", type=int, default=200, help="damaged files per photograph's JPEG")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    kinds = ["bytes", "header-bytes", "cut", "marker-in-scan", "insert"]
    with tempfile.TemporaryDirectory() as tmp:
        tree = pathlib.Path(tmp) / "tree" / "damaged"
        tree.mkdir(parents=True)
        files = {}
        for base, src in bases().items():
            for i in range(args.per_base):
                kind = kinds[i % len(kinds)]
                name = f"{base}-{kind}-{i:05d}.jpg"
                files[name] = damage(src, kind, rng)
                (tree / name).write_bytes(files[name])
        out = pathlib.Path(tmp) / "out"
        subprocess.run([args.cfkit, "prepare", "--image-folder", str(tree.parent), "--split", "x",
                        "--out", str(out), "--image-size", "64", "--max-bad-fraction", "1", "-q"],
                       check=True, stdout=subprocess.DEVNULL)
        kept = {}
        for shard in sorted(out.glob("data/*.parquet")):
            for row in pq.read_table(shard, columns=["id", "image"]).to_pylist():
                kept[row["id"].rsplit("/", 1)[-1]] = np.asarray(Image.open(io.BytesIO(row["image"]["bytes"])))
        reasons = {}
        quarantine = out / "quarantine-x.jsonl"
        if quarantine.exists():
            for line in quarantine.read_text().splitlines():
                entry = json.loads(line)
                reasons[pathlib.Path(entry["path"]).name] = entry["reason"]
        problems = []
        pillow_reads = 0
        for name, data in sorted(files.items()):
            ref, ours = reference(data), kept.get(name)
            if isinstance(ref, str):
                if ours is not None:
                    problems.append(f"cfkit keeps, Pillow refuses: {name} ({ref})")
                continue
            pillow_reads += 1
            if ours is None:
                problems.append(f"Pillow reads, cfkit refuses: {name} ({reasons.get(name)})")
            elif (d := int(np.abs(ref.astype(int) - ours.astype(int)).max())) > 0:
                problems.append(f"pixels differ by up to {d}: {name}")
    print("\n".join(problems))
    print(json.dumps(dict(files=len(files), pillow_reads=pillow_reads, cfkit_keeps=len(kept),
                          disagreements=len(problems))))
    raise SystemExit(1 if problems else 0)


if __name__ == "__main__":
    main()
