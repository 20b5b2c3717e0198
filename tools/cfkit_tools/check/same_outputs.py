"""Whether two checkouts' `./just train` outputs are the same (a refactor's "outputs unchanged"):
shards by content — every column and the row groups, naming the metadata keys that differ (the
files' bytes differ when a recorded identity does) — checkpoints by bytes, `metrics.jsonl` and
`report.json` by value (images/s aside).

    PYTHONPATH=tools .venv/bin/python -m cfkit_tools.check.same_outputs BEFORE AFTER

BEFORE and AFTER are repository roots where `./just train` ran (data/fashionshift,
data/fashionshift-cf, runs/train). Exits 1 when anything but the named metadata differs."""
import glob, hashlib, json, os, sys
import pyarrow.parquet as pq

A, B = sys.argv[1], sys.argv[2]
bad = []

def sha(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()

def meta_diff(ma, mb):
    out = []
    for k in sorted(set(ma) | set(mb)):
        va, vb = ma.get(k), mb.get(k)
        if va != vb:
            out.append(k.decode() if isinstance(k, bytes) else k)
    return out

for sub in ["data/fashionshift", "data/fashionshift-cf"]:
    fa = sorted(glob.glob(f"{A}/{sub}/data/*.parquet"))
    fb = sorted(glob.glob(f"{B}/{sub}/data/*.parquet"))
    assert [os.path.basename(f) for f in fa] == [os.path.basename(f) for f in fb], sub
    same_bytes = sum(sha(x) == sha(y) for x, y in zip(fa, fb))
    keys = set()
    for x, y in zip(fa, fb):
        px, py = pq.ParquetFile(x), pq.ParquetFile(y)
        if px.metadata.num_row_groups != py.metadata.num_row_groups:
            bad.append(f"{x}: row groups {px.metadata.num_row_groups} vs {py.metadata.num_row_groups}")
        ta, tb = px.read(), py.read()
        if not ta.equals(tb):
            bad.append(f"{x}: column data differ")
        keys |= set(meta_diff(px.schema_arrow.metadata or {}, py.schema_arrow.metadata or {}))
        keys |= set(meta_diff(px.metadata.metadata or {}, py.metadata.metadata or {}))
    print(f"{sub}: {len(fa)} shards, column data and row groups identical: {not any(sub in b for b in bad)}; "
          f"byte-identical files {same_bytes}/{len(fa)}; metadata keys that differ: {sorted(keys)}")

ra, rb = f"{A}/runs/train", f"{B}/runs/train"
for ck in ["best", "last"]:
    for f in ["model.safetensors", "head.safetensors", "optimizer.safetensors"]:
        pa, pb = f"{ra}/checkpoints/{ck}/{f}", f"{rb}/checkpoints/{ck}/{f}"
        if os.path.exists(pa) or os.path.exists(pb):
            same = sha(pa) == sha(pb)
            print(f"checkpoints/{ck}/{f}: byte-identical {same}")
            if not same:
                bad.append(f"{ck}/{f}")

def lines(p):
    return [json.loads(l) for l in open(p)]
ma, mb = lines(f"{ra}/metrics.jsonl"), lines(f"{rb}/metrics.jsonl")
strip = lambda d: {k: v for k, v in d.items() if k != "images_per_s"}
same = len(ma) == len(mb) and all(strip(x) == strip(y) for x, y in zip(ma, mb))
print(f"metrics.jsonl: {len(ma)} lines, equal by value apart from images_per_s: {same}")
if not same:
    bad.append("metrics")
qa, qb = open(f"{ra}/quarantine.jsonl").read(), open(f"{rb}/quarantine.jsonl").read()
print(f"quarantine.jsonl: equal: {qa == qb} ({len(qa)} bytes)")
ea, eb = json.load(open(f"{ra}/report.json")), json.load(open(f"{rb}/report.json"))
def top1(e):
    return {s["name"]: (s["images"], s["correct"], s["top1"], s.get("background")) for s in e["eval"]["sets"]}
same = top1(ea) == top1(eb) and ea["best"] == eb["best"] and ea["steps"] == eb["steps"]
print(f"report.json: per-set images/correct/top-1/background and best validation equal: {same}; "
      f"OOD mean before {ea['eval']['ood_mean']:.4f} (5 OOD sets), after {eb['eval']['ood_mean']:.4f} (ood-near apart)")
if not same:
    bad.append("report")
print("BAD:" if bad else "ALL EQUAL", bad)
sys.exit(1 if bad else 0)
