#!/usr/bin/env python3
"""Reads a cfkit dataset directory with pyarrow, DuckDB, Polars and Hugging Face `datasets`, and
checks that they agree with each other and with the manifest.

Usage: check_shards.py DIR SPLIT [--expect-rows N] [--pixels-json FILE]

Checks: every shard's metadata (schema version, dataset JSON, `huggingface` features) in pyarrow;
the Parquet key-value pairs in DuckDB; row counts of pyarrow, DuckDB, Polars and `datasets` equal
the manifest's; labels and class names agree (ClassLabel names = the dataset's classes); `datasets`
decodes the image column to PIL images whose pixels equal a PNG decode of the stored bytes; with
--pixels-json, the first rows' pixels equal the given values (written by the Rust side).
Prints one JSON line with what it saw; exits non-zero with a message on any mismatch.
"""
import argparse
import glob
import io
import json
import os
import sys

import datasets
import duckdb
import numpy as np
import polars as pl
import pyarrow.parquet as pq
from PIL import Image


def fail(msg):
    print(f"interop check failed: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("split")
    ap.add_argument("--pixels-json")
    args = ap.parse_args()
    manifest = json.load(open(os.path.join(args.dir, "manifest.json")))
    entry = manifest["splits"][args.split]
    files = sorted(glob.glob(os.path.join(args.dir, "data", f"{args.split}-*.parquet")))
    if len(files) != len(entry["shards"]):
        fail(f"{len(files)} shard files on disk, manifest lists {len(entry['shards'])}")

    # pyarrow: schema metadata
    table = pq.read_table(files)
    meta = pq.read_schema(files[0]).metadata
    if meta[b"cfkit.schema_version"] != b"1":
        fail(f"schema version {meta[b'cfkit.schema_version']}")
    info = json.loads(meta[b"cfkit.dataset"])
    hf = json.loads(meta[b"huggingface"])
    if hf["info"]["features"]["image"]["_type"] != "Image" or hf["info"]["features"]["label"]["names"] != info["classes"]:
        fail(f"huggingface features: {hf}")
    if table.num_rows != entry["rows"]:
        fail(f"pyarrow sees {table.num_rows} rows, manifest says {entry['rows']}")

    # DuckDB: rows, labels, and the plain key-value metadata
    glob_pat = os.path.join(args.dir, "data", f"{args.split}-*.parquet")
    con = duckdb.connect()
    n_duck = con.execute(f"select count(*) from '{glob_pat}'").fetchone()[0]
    kv = dict(con.execute(f"select decode(key), decode(value) from parquet_kv_metadata('{files[0]}')").fetchall())
    if n_duck != entry["rows"] or kv.get("cfkit.schema_version") != "1" or kv.get("cfkit.split") != args.split:
        fail(f"duckdb: {n_duck} rows, kv {sorted(kv)}")
    pairs = con.execute(f"select distinct label, class_name from '{glob_pat}' order by label").fetchall()
    for label, name in pairs:
        if info["classes"][label] != name:
            fail(f"label {label} has class_name {name!r}, classes say {info['classes'][label]!r}")
    png_len = con.execute(f"select min(octet_length(image.bytes)) from '{glob_pat}'").fetchone()[0]

    # Polars
    df = pl.read_parquet(files)
    if df.height != entry["rows"] or df["label"].to_list() != table.column("label").to_pylist():
        fail("polars disagrees with pyarrow")

    # Hugging Face datasets: Image and ClassLabel features, decoded pixels
    # (datasets split names must be word characters, so not "ood-sketch")
    ds = datasets.load_dataset("parquet", data_files={"data": files}, split="data")
    if type(ds.features["image"]).__name__ != "Image" or type(ds.features["label"]).__name__ != "ClassLabel":
        fail(f"datasets features: {ds.features}")
    if ds.features["label"].names != info["classes"] or len(ds) != entry["rows"]:
        fail("datasets: class names or row count differ")
    n_check = min(8, len(ds))
    raw = table.column("image").to_pylist()
    for i in range(n_check):
        img = ds[i]["image"]
        a = np.asarray(img.convert("RGB"))
        b = np.asarray(Image.open(io.BytesIO(raw[i]["bytes"])).convert("RGB"))
        if a.shape != (info["image_size"], info["image_size"], 3) or not np.array_equal(a, b):
            fail(f"row {i}: datasets pixels differ from the stored PNG")
    if args.pixels_json:
        want = json.load(open(args.pixels_json))
        for i, w in enumerate(want):
            a = np.asarray(ds[i]["image"].convert("RGB")).reshape(-1)
            if a.tolist() != w:
                fail(f"row {i}: pixels differ from what cfkit wrote")
    variants_checked = 0
    if manifest["kind"] == "counterfactuals":
        # Counterfactual shards: the nested variants, their images and features, from DuckDB and pyarrow.
        k = con.execute(f"select min(len(variants)), max(len(variants)) from '{glob_pat}'").fetchone()
        d = len(table.column("teacher_feature")[0].as_py())
        row = con.execute(f"select id, unnest(variants, recursive := false) as v from '{glob_pat}' limit {k[0]}").fetchall()
        for _, v in row:
            img = np.asarray(Image.open(io.BytesIO(v["image"]["bytes"])).convert("RGB"))
            if img.shape != (info["image_size"], info["image_size"], 3) or len(v["teacher_feature"]) != d:
                fail(f"variant {v['strategy']}: image {img.shape}, feature {len(v['teacher_feature'])}")
            if len(v["mask"]) != len(table.column("cam")[0].as_py()):
                fail("mask and cam lengths differ")
            variants_checked += 1
        first = table.column("variants")[0].as_py()
        if len(first) != k[0] or not first[0]["strategy"]:
            fail("pyarrow variants differ from DuckDB's")
    print(json.dumps({"rows": entry["rows"], "variants_checked": variants_checked, "shards": len(files), "classes": len(info["classes"]),
                      "min_png_bytes": png_len, "checked_pixels": n_check, "datasets": datasets.__version__}))


if __name__ == "__main__":
    main()
