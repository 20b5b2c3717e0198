"""Copies of the ImageNet suite's sets in the forms the ecosystem publishes them, for
tests/imagenet_suite.rs: from an ImageFolder suite root (the layouts of README's table), writes
under --out

  wds_imagenetv2/, wds_imagenet-r/, wds_objectnet/, wds_imagenet-a/
      clip_benchmark's WebDataset layout, written with `webdataset.ShardWriter` as
      clip_benchmark's webdataset_builder.py writes it: test/{0..N-1}.tar (`s%07d` keys, the image
      + `.cls`), test/nshards.txt, classnames.txt and zeroshot_classification_templates.txt; labels
      by clip_benchmark's convention (datasets/builder.py): the set's own classes in their own
      order — V2's folder numbers, R's and A's 200 wnids sorted, ObjectNet's mapped folders sorted
      (named by ObjectNet's labels in lower case, its other folders left out); ObjectNet's images
      re-encoded as lossless WebP as clip_benchmark's default image format
  imagenet/data/{train,validation}-00000-of-00001.parquet
      Hugging Face `datasets` Parquet with a ClassLabel over the 1,000 classes in wnid order (the validation
      file holds the set; the train file, other images, must not be picked up)
  imagenet-sketch/data/test-00000-of-00001.parquet
      Parquet whose label is a string `wnid` column (as axiong/imagenet-r publishes)

Run: python tests/ecosystem/suite_forms.py --folders ROOT --assets assets/imagenet --out OUT
"""
import argparse
import io
import json
import os

from PIL import Image


def lines(path):
    with open(path) as f:
        return [l.strip() for l in f if l.strip()]


def images(d):
    return sorted(os.path.join(d, f) for f in os.listdir(d))


def write_wds(out, samples, classnames):
    """samples: (label, bytes, ext) in order."""
    import webdataset as wds

    test = os.path.join(out, "test")
    os.makedirs(test, exist_ok=True)
    with wds.ShardWriter(os.path.join(test, "%d.tar"), maxcount=3, verbose=0) as sink:
        for i, (label, data, ext) in enumerate(samples):
            sink.write({"__key__": "s%07d" % i, ext: data, "cls": label})
        n = sink.shard
    with open(os.path.join(test, "nshards.txt"), "w") as f:
        f.write(f"{n}\n")
    with open(os.path.join(out, "classnames.txt"), "w") as f:
        f.write("\n".join(classnames) + "\n")
    with open(os.path.join(out, "zeroshot_classification_templates.txt"), "w") as f:
        f.write("a photo of a {c}.\n")


def raw(path):
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    with open(path, "rb") as f:
        return f.read(), {"jpeg": "jpg"}.get(ext, ext)


def webp(path):
    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, format="webp", lossless=True)
    return buf.getvalue(), "webp"


def folder_samples(root, classes, encode):
    """(label, bytes, ext) for every image of `root/<class>/`, label = index in `classes`."""
    out = []
    for label, c in enumerate(classes):
        d = os.path.join(root, c)
        if os.path.isdir(d):
            out.extend((label, *encode(p)) for p in images(d))
    return out


def write_parquet(path, rows, features):
    from datasets import Dataset

    os.makedirs(os.path.dirname(path), exist_ok=True)
    columns = {k: [r[k] for r in rows] for k in features}
    Dataset.from_dict(columns, features=features).to_parquet(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folders", required=True)
    ap.add_argument("--assets", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    wnids = lines(os.path.join(a.assets, "wnids.txt"))
    names = lines(os.path.join(a.assets, "classnames.txt"))
    name_of = dict(zip(wnids, names))
    r = sorted(lines(os.path.join(a.assets, "imagenet_r_wnids.txt")))
    aw = sorted(lines(os.path.join(a.assets, "imagenet_a_wnids.txt")))
    with open(os.path.join(a.assets, "objectnet_to_imagenet.json")) as f:
        objectnet = json.load(f)["classes"]
    on = sorted(objectnet)

    write_wds(os.path.join(a.out, "wds_imagenetv2"),
              folder_samples(os.path.join(a.folders, "imagenetv2-matched-frequency-format-val"),
                             [str(i) for i in range(1000)], raw), names)
    write_wds(os.path.join(a.out, "wds_imagenet-r"),
              folder_samples(os.path.join(a.folders, "imagenet-r"), r, raw), [name_of[w] for w in r])
    write_wds(os.path.join(a.out, "wds_imagenet-a"),
              folder_samples(os.path.join(a.folders, "imagenet-a"), aw, raw), [name_of[w] for w in aw])
    write_wds(os.path.join(a.out, "wds_objectnet"),
              folder_samples(os.path.join(a.folders, "objectnet-1.0", "images"), on, webp),
              [objectnet[k]["label"].lower() for k in on])

    from datasets import ClassLabel, Features, Value
    from datasets import Image as HfImage

    val = folder_samples(os.path.join(a.folders, "imagenet", "val"), wnids, raw)
    # ClassLabel names must be unique (CLIP's are not: two "crane"s); the Hub's are WordNet's.
    hf_names = [f"{n}, {w}" for n, w in zip(names, wnids)]
    label_features = Features({"image": HfImage(), "label": ClassLabel(names=hf_names)})
    rows = [{"image": {"bytes": b, "path": f"{i}.{e}"}, "label": l} for i, (l, b, e) in enumerate(val)]
    write_parquet(os.path.join(a.out, "imagenet", "data", "validation-00000-of-00001.parquet"), rows,
                  label_features)
    # A train file beside it with other rows (the first one only, relabelled): never read.
    write_parquet(os.path.join(a.out, "imagenet", "data", "train-00000-of-00001.parquet"),
                  [dict(rows[0], label=999)], label_features)
    sketch = folder_samples(os.path.join(a.folders, "sketch"), wnids, raw)
    write_parquet(os.path.join(a.out, "imagenet-sketch", "data", "test-00000-of-00001.parquet"),
                  [{"image": {"bytes": b, "path": f"{i}.{e}"}, "wnid": wnids[l]}
                   for i, (l, b, e) in enumerate(sketch)],
                  Features({"image": HfImage(), "wnid": Value("string")}))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
