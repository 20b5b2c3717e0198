"""Image datasets as the ecosystem's own libraries write them, for `tests/sources.rs`.

Writes, under --out (default tests/fixtures/ecosystem):
  images/<class>/<name>.jpg       an ImageFolder tree of real photographs (scikit-image's
                                  data set), downsized and re-encoded by Pillow; one of them
                                  truncated (the damaged image every form must quarantine)
  hf/train-0000{0,1}-of-00002.parquet
                                  the same images in the same order, written by Hugging Face
                                  `datasets` (Image + ClassLabel features, to_parquet), as the
                                  Hub stores them (bytes embedded, path = file name)
  hf-paths/train.parquet          the same rows with path-only images (bytes null, path relative
                                  to the file), what `to_parquet` writes for images that are files
  wds/test/{0,1}.tar, wds/test/nshards.txt, wds/classnames.txt
                                  the same images written by `webdataset.ShardWriter` in
                                  clip_benchmark's layout (`s%07d` keys, `.jpg` + `.cls` members)

Run: python tests/ecosystem/make_fixtures.py  (just ecosystem-fixtures)
"""

import argparse
import io
import os
import shutil

import numpy as np
from PIL import Image
from skimage import data as skdata

# Class names of the ClassLabel feature and of classnames.txt (index = label).
CLASSES = ["animal", "object", "person"]

# (class, file name, scikit-image picture, crop box as fractions (left, top, right, bottom)).
PHOTOS = [
    ("animal", "chelsea.jpg", "chelsea", (0.0, 0.0, 1.0, 1.0)),
    ("animal", "chelsea_face.jpg", "chelsea", (0.25, 0.0, 0.75, 0.7)),
    ("animal", "truncated.jpg", "astronaut", (0.0, 0.5, 0.5, 1.0)),
    ("object", "coffee.jpg", "coffee", (0.0, 0.0, 1.0, 1.0)),
    ("object", "rocket.jpg", "rocket", (0.0, 0.0, 1.0, 1.0)),
    ("object", "camera_grey.jpg", "camera", (0.1, 0.1, 0.9, 0.9)),
    ("person", "astronaut.jpg", "astronaut", (0.0, 0.0, 1.0, 1.0)),
    ("person", "astronaut_face.jpg", "astronaut", (0.3, 0.0, 0.7, 0.5)),
    ("person", "astronaut_wide.jpg", "astronaut", (0.0, 0.2, 1.0, 0.6)),
]
# The truncated file: the first 40 % of its bytes.
DAMAGED = "truncated.jpg"


def photo_bytes(picture, box):
    arr = getattr(skdata, picture)()
    img = Image.fromarray(np.asarray(arr))
    w, h = img.size
    img = img.crop((int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h)))
    img.thumbnail((160, 160), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def rows():
    """(class, name, bytes) in the order an ImageFolder lists them: classes, then names, sorted."""
    out = []
    for cls, name, picture, box in PHOTOS:
        b = photo_bytes(picture, box)
        if name == DAMAGED:
            b = b[: int(len(b) * 0.4)]
        out.append((cls, name, b))
    return sorted(out, key=lambda r: (r[0], r[1]))


def write_image_folder(out, items):
    for cls, name, b in items:
        d = os.path.join(out, "images", cls)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "wb") as f:
            f.write(b)


def write_hf(out, items):
    from datasets import ClassLabel, Dataset, Features
    from datasets import Image as HfImage

    features = Features({"image": HfImage(), "label": ClassLabel(names=CLASSES)})
    ds = Dataset.from_dict(
        {
            "image": [{"bytes": b, "path": name} for _, name, b in items],
            "label": [CLASSES.index(c) for c, _, _ in items],
        },
        features=features,
    )
    d = os.path.join(out, "hf")
    os.makedirs(d, exist_ok=True)
    for i in range(2):
        part = ds.shard(num_shards=2, index=i, contiguous=True)
        part.to_parquet(os.path.join(d, f"train-{i:05d}-of-00002.parquet"))
    # Path-only images (relative to the Parquet file), as to_parquet writes file-backed images.
    paths = Dataset.from_dict(
        {
            "image": [
                {"bytes": None, "path": f"../images/{c}/{name}"} for c, name, _ in items
            ],
            "label": [CLASSES.index(c) for c, _, _ in items],
        },
        features=features,
    )
    d = os.path.join(out, "hf-paths")
    os.makedirs(d, exist_ok=True)
    # batch_size given: datasets would otherwise stat the (relative) paths from the cwd.
    paths.to_parquet(os.path.join(d, "train.parquet"), batch_size=100)


def write_wds(out, items):
    import webdataset as wds

    d = os.path.join(out, "wds", "test")
    os.makedirs(d, exist_ok=True)
    with wds.ShardWriter(os.path.join(d, "%d.tar"), maxcount=5, verbose=0) as sink:
        for i, (c, _, b) in enumerate(items):
            sink.write({"__key__": "s%07d" % i, "jpg": b, "cls": CLASSES.index(c)})
        n = sink.shard
    with open(os.path.join(d, "nshards.txt"), "w") as f:
        f.write(f"{n}\n")
    with open(os.path.join(out, "wds", "classnames.txt"), "w") as f:
        f.write("\n".join(CLASSES) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="tests/fixtures/ecosystem")
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    items = rows()
    write_image_folder(args.out, items)
    write_hf(args.out, items)
    write_wds(args.out, items)
    print(f"wrote {len(items)} images in three forms under {args.out}")


if __name__ == "__main__":
    main()
