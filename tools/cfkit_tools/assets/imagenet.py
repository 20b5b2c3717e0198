"""Generate the ImageNet evaluation protocol assets under assets/imagenet/.

Every fact written by this script is read out of a named public source (a
checkout or a bare git snapshot of a GitHub repository, or an installed
package); nothing is downloaded.  Python source files are never imported or
executed: literal lists are pulled out of them with ``ast.literal_eval``.

Sources (pass each as a work-tree directory or as a bare git directory,
optionally suffixed ``@<rev>``; ``--mirror-root`` resolves
``<root>/<owner>+<name>/repo`` for all of them at once):

  --imagenet-r          hendrycks/imagenet-r            eval.py, README.md
  --imagenet-a          hendrycks/natural-adv-examples  eval_many_models.py, eval.py
  --wise-ft             mlfoundations/wise-ft           src/datasets/...
  --reference           Coxy7/robust-finetuning         data/...
  --imagenetv2-pytorch  modestyachts/ImageNetV2_pytorch imagenetv2_pytorch/...
  --open-clip-metadata  open_clip/zero_shot_metadata.py (default: installed)
  --objectnet-mappings  a directory holding the four ObjectNet mapping files
                        (default: wise-ft src/datasets/objectnet_metadata/,
                        a copy of objectnet-1.0/mappings/)
  --timm-info           timm/data/_info (default: installed timm, if any);
                        used only for cross-checks

Example:
  PYTHONPATH=tools python -m cfkit_tools.assets.imagenet --mirror-root /work/.mirror \\
      --out assets/imagenet

Validation failures abort with a non-zero exit status and write nothing.
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

REPOS = {
    "imagenet_r": "hendrycks/imagenet-r",
    "imagenet_a": "hendrycks/natural-adv-examples",
    "wise_ft": "mlfoundations/wise-ft",
    "reference": "Coxy7/robust-finetuning",
    "imagenetv2_pytorch": "modestyachts/ImageNetV2_pytorch",
}

OBJECTNET_FILES = (
    "folder_to_objectnet_label.json",
    "objectnet_to_imagenet_1k.json",
    "imagenet_to_label_2012_v2",
    "pytorch_to_imagenet_2012_id.json",
)
WISE_FT_OBJECTNET_DIR = "src/datasets/objectnet_metadata"


class ValidationError(Exception):
    pass


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise ValidationError(msg)


# --------------------------------------------------------------------------
# Reading sources


class Source:
    """A repository given as a work tree or as a bare git dir (path[@rev])."""

    def __init__(self, repo: str, spec: str):
        self.repo = repo
        path, _, rev = spec.partition("@")
        self.path = Path(path)
        self.rev = rev or "HEAD"
        self.is_git = (self.path / "objects").is_dir() and (self.path / "HEAD").is_file()
        if not self.is_git and not self.path.is_dir():
            raise SystemExit(f"{repo}: no such directory: {self.path}")
        self.commit = self._commit()

    def _git(self, *args: str) -> bytes:
        return subprocess.run(
            ["git", f"--git-dir={self.path}", *args],
            check=True, capture_output=True,
        ).stdout

    def _commit(self) -> str | None:
        try:
            if self.is_git:
                return self._git("rev-parse", f"{self.rev}^{{commit}}").decode().strip()
            out = subprocess.run(
                ["git", "-C", str(self.path), "rev-parse", "HEAD"],
                check=True, capture_output=True,
            ).stdout
            return out.decode().strip()
        except (subprocess.CalledProcessError, FileNotFoundError):
            return None

    def read(self, rel: str) -> str:
        if self.is_git:
            return self._git("show", f"{self.rev}:{rel}").decode("utf-8")
        return (self.path / rel).read_text(encoding="utf-8")

    def cite(self, *paths: str) -> dict:
        out = {"repo": self.repo, "paths": list(paths)}
        if self.commit:
            out["commit"] = self.commit
        return out


class DirSource:
    """A plain directory of files (e.g. objectnet-1.0/mappings)."""

    def __init__(self, path: Path):
        self.path = path

    def read(self, rel: str) -> str:
        return (self.path / rel).read_text(encoding="utf-8")


class SubdirSource:
    """Files under one folder of a Source."""

    def __init__(self, base: Source, prefix: str):
        self.base = base
        self.prefix = prefix

    def read(self, rel: str) -> str:
        return self.base.read(f"{self.prefix}/{rel}")


def module_literal(text: str, name: str):
    """Value of the top-level literal assignment ``name = <literal>``."""
    tree = ast.parse(text)
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == name:
                    return ast.literal_eval(node.value)
    raise ValidationError(f"no literal assignment to {name!r}")


def crop_border_px(text: str) -> int:
    """Pixels cut from each side by ``cropArea = (b, b, width - b, height - b)``."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "cropArea" for t in node.targets)
                and isinstance(node.value, ast.Tuple) and len(node.value.elts) == 4):
            left, top, right, bottom = node.value.elts
            b = ast.literal_eval(left)
            check(ast.literal_eval(top) == b, "cropArea: top != left")
            for side in (right, bottom):
                check(isinstance(side, ast.BinOp) and isinstance(side.op, ast.Sub)
                      and ast.literal_eval(side.right) == b,
                      "cropArea: right/bottom are not (extent - border)")
            return b
    raise ValidationError("no cropArea tuple found")


def find_package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


# --------------------------------------------------------------------------
# Building the assets


def build_wnids(src_r: Source, src_a: Source):
    text_r = src_r.read("eval.py")
    text_a = src_a.read("eval_many_models.py")
    wnids = module_literal(text_r, "all_wnids")
    wnids_a_copy = module_literal(text_a, "all_wnids")
    check(len(wnids) == 1000, f"all_wnids has {len(wnids)} entries")
    check(len(set(wnids)) == 1000, "all_wnids has duplicates")
    check(all(re.fullmatch(r"n\d{8}", w) for w in wnids), "malformed wnid")
    check(wnids == sorted(wnids), "all_wnids is not sorted")
    check(wnids[0] == "n01440764" and wnids[-1] == "n15075141", "unexpected first/last wnid")
    check(wnids_a_copy == wnids,
          "imagenet-r and natural-adv-examples disagree on all_wnids")
    r = sorted(module_literal(text_r, "imagenet_r_wnids"))
    a = sorted(module_literal(text_a, "imagenet_a_wnids"))
    known = set(wnids)
    for name, sub in (("imagenet-r", r), ("imagenet-a", a)):
        check(len(sub) == 200 and len(set(sub)) == 200, f"{name}: {len(set(sub))} wnids, want 200")
        check(set(sub) <= known, f"{name}: wnids outside the 1000")
    # eval.py of natural-adv-examples states the ImageNet-A subset as a
    # 1000 -> 200 index map; it must select the same classes.
    k_to_200 = module_literal(src_a.read("eval.py"), "thousand_k_to_200")
    sel = sorted(k for k, v in k_to_200.items() if v != -1)
    check(sel == [wnids.index(w) for w in a], "natural-adv-examples eval.py thousand_k_to_200 disagrees")
    check([k_to_200[k] for k in sel] == list(range(200)), "thousand_k_to_200 is not 0..199 in order")
    return wnids, r, a


def build_classnames(path: Path):
    names = list(module_literal(path.read_text(encoding="utf-8"), "IMAGENET_CLASSNAMES"))
    check(len(names) == 1000, f"IMAGENET_CLASSNAMES has {len(names)} entries")
    check(all(isinstance(n, str) and n and n == n.strip() and "\n" not in n for n in names),
          "bad class name")
    return names


def build_objectnet(src, wnids):
    folder_to_label = json.loads(src.read("folder_to_objectnet_label.json"))
    label_to_in = json.loads(src.read("objectnet_to_imagenet_1k.json"))
    in2012_names = [ln.strip() for ln in src.read("imagenet_to_label_2012_v2").splitlines()]
    while in2012_names and not in2012_names[-1]:
        in2012_names.pop()
    pt_to_2012 = {int(k): int(v) for k, v in
                  json.loads(src.read("pytorch_to_imagenet_2012_id.json")).items()}

    check(len(in2012_names) == 1000, f"imagenet_to_label_2012_v2: {len(in2012_names)} lines")
    check(sorted(pt_to_2012) == list(range(1000)) and sorted(pt_to_2012.values()) == list(range(1000)),
          "pytorch_to_imagenet_2012_id is not a permutation of 0..999")
    id2012_to_pt = {v: k for k, v in pt_to_2012.items()}

    label_to_folder = {}
    for folder, label in folder_to_label.items():
        check(label not in label_to_folder, f"ObjectNet label {label!r} has two folders")
        label_to_folder[label] = folder

    name_to_ids: dict[str, list[int]] = {}
    for i, n in enumerate(in2012_names):
        name_to_ids.setdefault(n, []).append(i)

    classes = {}
    for label, joined in label_to_in.items():
        check(label in label_to_folder, f"ObjectNet label {label!r} has no folder")
        idx = []
        for name in joined.split("; "):
            ids = name_to_ids.get(name)
            check(ids is not None, f"{label!r}: unknown ImageNet label {name!r}")
            check(len(ids) == 1, f"{label!r}: ambiguous ImageNet label {name!r}")
            idx.append(id2012_to_pt[ids[0]])
        idx = sorted(set(idx))
        classes[label_to_folder[label]] = {
            "label": label,
            "imagenet": idx,
            "wnids": [wnids[i] for i in idx],
            "imagenet_labels": [in2012_names[pt_to_2012[i]] for i in idx],
        }
    classes = dict(sorted(classes.items()))
    check(len(classes) == 113, f"{len(classes)} ObjectNet classes map to ImageNet, want 113")
    covered = sorted({i for c in classes.values() for i in c["imagenet"]})
    n_maps = sum(len(c["imagenet"]) for c in classes.values())
    return classes, covered, n_maps, len(folder_to_label)


# --------------------------------------------------------------------------
# Cross-checks (report only where the source is optional)


def cross_checks(wnids, r, a, names, on_classes, srcs, timm_dir):
    notes = []
    idx_of = {w: i for i, w in enumerate(wnids)}
    r_idx = [idx_of[w] for w in r]
    a_idx = [idx_of[w] for w in a]

    ref = srcs.get("reference")
    if ref:
        check(module_literal(ref.read("data/imagenet_r.py"), "IMAGENET_R_CLASSES") == r_idx,
              "reference IMAGENET_R_CLASSES != indices of imagenet_r_wnids")
        check(module_literal(ref.read("data/imagenet_a.py"), "IMAGENET_A_CLASSES") == a_idx,
              "reference IMAGENET_A_CLASSES != indices of imagenet_a_wnids")
        ref_names = list(module_literal(ref.read("data/imagenet.py"), "IMAGENET_CLASS_NAMES"))
        check(ref_names == names, "reference IMAGENET_CLASS_NAMES != open_clip IMAGENET_CLASSNAMES")
        notes.append("reference (Coxy7/robust-finetuning) R/A index lists and class names agree")
    wise = srcs.get("wise_ft")
    if wise:
        check(module_literal(wise.read("src/datasets/imagenet_r.py"), "CLASS_SUBLIST") == r_idx,
              "wise-ft imagenet_r CLASS_SUBLIST disagrees")
        check(module_literal(wise.read("src/datasets/imagenet_a.py"), "CLASS_SUBLIST") == a_idx,
              "wise-ft imagenet_a CLASS_SUBLIST disagrees")
        check(list(module_literal(wise.read("src/datasets/imagenet_classnames.py"),
                                  "openai_classnames")) == names,
              "wise-ft openai_classnames disagrees")
        notes.append("wise-ft R/A CLASS_SUBLIST and openai_classnames agree")

    if timm_dir and (timm_dir / "imagenet_synsets.txt").is_file():
        t_wnids = (timm_dir / "imagenet_synsets.txt").read_text().split()
        check(t_wnids == wnids, "timm imagenet_synsets.txt disagrees with all_wnids")
        lemma = {}
        for line in (timm_dir / "imagenet_synset_to_lemma.txt").read_text().splitlines():
            w, _, text = line.partition("\t")
            lemma[w] = text.strip()
        bad = [(f, w, l) for f, c in on_classes.items()
               for w, l in zip(c["wnids"], c["imagenet_labels"]) if lemma.get(w) != l]
        check(not bad, f"ObjectNet label/wnid mismatches against timm lemmas: {bad[:5]}")
        notes.append("timm imagenet_synsets.txt == wnids; every ObjectNet-mapped ImageNet "
                     "label equals timm's lemma for the derived wnid")
    return notes


# --------------------------------------------------------------------------


def write_text(path: Path, lines) -> None:
    path.write_text("".join(f"{ln}\n" for ln in lines), encoding="utf-8")


def dump_json(obj, indent: int = 0) -> str:
    """Indented JSON in which lists of scalars stay on one line."""
    pad, inner = "  " * indent, "  " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {dump_json(v, indent + 1)}"
                 for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        items = [f"{inner}{dump_json(v, indent + 1)}" for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False)


def write_json(path: Path, obj) -> None:
    text = dump_json(obj) + "\n"
    check(json.loads(text) == obj, f"{path}: JSON round trip failed")
    path.write_text(text, encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mirror-root", type=Path,
                    help="directory with <owner>+<name>/repo bare snapshots")
    ap.add_argument("--imagenet-r")
    ap.add_argument("--imagenet-a")
    ap.add_argument("--wise-ft")
    ap.add_argument("--reference")
    ap.add_argument("--imagenetv2-pytorch")
    ap.add_argument("--open-clip-metadata", type=Path)
    ap.add_argument("--objectnet-mappings", type=Path)
    ap.add_argument("--timm-info", type=Path)
    ap.add_argument("--out", type=Path, default=Path("assets/imagenet"))
    args = ap.parse_args(argv)

    srcs: dict[str, Source] = {}
    for key, repo in REPOS.items():
        spec = getattr(args, key)
        if spec is None and args.mirror_root is not None:
            cand = args.mirror_root / repo.replace("/", "+") / "repo"
            if cand.exists():
                spec = str(cand)
        if spec is not None:
            srcs[key] = Source(repo, spec)
    for key in ("imagenet_r", "imagenet_a"):
        if key not in srcs:
            ap.error(f"--{key.replace('_', '-')} (or --mirror-root) is required")
    if args.objectnet_mappings is None and "wise_ft" not in srcs:
        ap.error("--objectnet-mappings or --wise-ft (or --mirror-root) is required")

    oc_meta = args.open_clip_metadata
    if oc_meta is None:
        d = find_package_dir("open_clip")
        if d is None:
            ap.error("open_clip is not installed; pass --open-clip-metadata")
        oc_meta = d / "zero_shot_metadata.py"
    timm_dir = args.timm_info
    if timm_dir is None:
        d = find_package_dir("timm")
        timm_dir = d / "data" / "_info" if d else None

    try:
        wnids, r_wnids, a_wnids = build_wnids(srcs["imagenet_r"], srcs["imagenet_a"])
        names = build_classnames(oc_meta)
        if args.objectnet_mappings is not None:
            on_src = DirSource(args.objectnet_mappings)
            on_cite = {"path": str(args.objectnet_mappings), "files": list(OBJECTNET_FILES)}
        else:
            wise = srcs["wise_ft"]
            on_src = SubdirSource(wise, WISE_FT_OBJECTNET_DIR)
            on_cite = wise.cite(*(f"{WISE_FT_OBJECTNET_DIR}/{f}" for f in OBJECTNET_FILES))
        on_classes, covered, n_maps, n_on_folders = build_objectnet(on_src, wnids)
        notes = cross_checks(wnids, r_wnids, a_wnids, names, on_classes, srcs, timm_dir)

        # ObjectNet border crop, from the reference implementation.
        crop_cites = []
        crop = None
        for key, rel in (("reference", "data/objectnet.py"),
                         ("wise_ft", "src/datasets/objectnet.py")):
            if key in srcs:
                b = crop_border_px(srcs[key].read(rel))
                check(crop is None or b == crop, f"border crop differs: {crop} vs {b}")
                crop = b
                crop_cites.append(srcs[key].cite(rel))
        check(crop is not None, "need --reference or --wise-ft for the ObjectNet border crop")

        # Set sizes that are stated in a fetched source.
        sizes = {}
        v2 = srcs.get("imagenetv2_pytorch")
        if v2:
            t = v2.read("imagenetv2_pytorch/ImageNetV2_dataset.py")
            sizes["imagenet"] = (module_literal(t, "VAL_DATASET_SIZE"),
                                 v2.cite("imagenetv2_pytorch/ImageNetV2_dataset.py"))
            sizes["imagenet-v2"] = (module_literal(t, "V2_DATASET_SIZE"),
                                    v2.cite("imagenetv2_pytorch/ImageNetV2_dataset.py"))
            v2_dir = module_literal(t, "FNAMES")["matched-frequency"]
        else:
            v2_dir = "imagenetv2-matched-frequency-format-val"
        m = re.search(r"resulting in ([\d,]+) images", srcs["imagenet_r"].read("README.md"))
        check(m is not None, "imagenet-r README: image count not found")
        sizes["imagenet-r"] = (int(m.group(1).replace(",", "")),
                               srcs["imagenet_r"].cite("README.md"))
    except ValidationError as e:
        print(f"validation failed: {e}", file=sys.stderr)
        return 1

    def cite(key, *paths):
        return srcs[key].cite(*paths) if key in srcs else {"repo": REPOS[key], "paths": list(paths)}

    def size(key, fallback, note):
        if key in sizes:
            n, c = sizes[key]
            return {"num_images": n, "num_images_source": c}
        return {"num_images": fallback, "num_images_source": {"note": note}}

    ref_eval = cite("reference", "eval.py", "utils/misc.py")
    objectnet_json = {
        "format": "cfkit-objectnet-to-imagenet/1",
        "source": {
            "mapping_files": on_cite,
            "logic": cite("reference", "data/objectnet.py"),
            "note": ("keys are ObjectNet folder names (objectnet-1.0/images/<folder>); "
                     "imagenet = class indices in wnids.txt order, obtained via "
                     "imagenet_to_label_2012_v2 (label -> 2012 id) and "
                     "pytorch_to_imagenet_2012_id.json (pytorch index -> 2012 id)"),
        },
        "num_objectnet_folders": n_on_folders,
        "num_classes": len(on_classes),
        "num_imagenet_classes": len(covered),
        "imagenet_classes": covered,
        "classes": on_classes,
    }

    subset = lambda f: {"file": f, "rule": "restrict logits to these classes before argmax"}
    protocol = {
        "format": "cfkit-imagenet-protocol/1",
        "num_classes": 1000,
        "wnids_file": "wnids.txt",
        "classnames_file": "classnames.txt",
        "class_order": "sorted wnids (torchvision ImageFolder order); line i of wnids.txt is class i",
        "reference": cite("reference", "eval.py", "data/__init__.py"),
        "sets": {
            "imagenet": {
                "id": True,
                "split": "val",
                "folders": "wnid",
                "dir_names": ["ILSVRC2012/val", "imagenet/val_in_folder", "imagenet/val"],
                "class_subset": None, "label_map": None, "border_crop_px": 0,
                **size("imagenet", 50000, "ILSVRC-2012 validation set"),
                "source": [cite("reference", "data/imagenet.py"),
                           cite("wise_ft", "src/datasets/imagenet.py")],
            },
            "imagenet-v2": {
                "id": False,
                "variant": "matched-frequency",
                "folders": "index",
                "folders_note": ("folder names are the decimal class index 0..999; label = "
                                 "int(folder name), not the folder's sorted position"),
                "image_ext": ".jpeg",
                "dir_names": [v2_dir, "ImageNetV2-matched-frequency", "imagenetv2-matched-frequency"],
                "class_subset": None, "label_map": None, "border_crop_px": 0,
                **size("imagenet-v2", 10000, "ImageNetV2 matched-frequency"),
                "source": [cite("imagenetv2_pytorch", "imagenetv2_pytorch/ImageNetV2_dataset.py"),
                           cite("reference", "data/imagenet_v2.py")],
            },
            "imagenet-r": {
                "id": False,
                "folders": "wnid",
                "dir_names": ["imagenet-r"],
                "class_subset": subset("imagenet_r_wnids.txt"),
                "num_subset_classes": len(r_wnids),
                "label_map": None, "border_crop_px": 0,
                **size("imagenet-r", 30000, ""),
                "source": [cite("imagenet_r", "eval.py", "README.md"),
                           cite("reference", "data/imagenet_r.py")],
            },
            "imagenet-sketch": {
                "id": False,
                "folders": "wnid",
                "dir_names": ["sketch", "imagenet-sketch"],
                "class_subset": None, "label_map": None, "border_crop_px": 0,
                "num_images": 50889,
                "num_images_source": {
                    "note": ("not stated in a fetched repository; HaohanWang/ImageNet-Sketch "
                             "README.md gives the nominal 50000 (50 per class); 50889 is the "
                             "commonly reported file count of the release (e.g. "
                             "deepwiki.com/alibaba/easyrobust, ImageNet-Sketch page) - unverified")},
                "source": [cite("wise_ft", "src/datasets/imagenet_sketch.py"),
                           cite("reference", "data/imagenet_sketch.py")],
            },
            "objectnet": {
                "id": False,
                "folders": "objectnet",
                "folders_note": ("only the folders listed in objectnet_to_imagenet.json are "
                                 "evaluated; the others have no ImageNet counterpart"),
                "dir_names": ["objectnet-1.0/images"],
                "mappings_dir_names": ["objectnet-1.0/mappings"],
                "class_subset": {"file": "objectnet_to_imagenet.json", "key": "imagenet_classes",
                                 "rule": ("restrict logits to the union of mapped ImageNet "
                                          "classes before argmax; correct iff the predicted "
                                          "class is in the image's folder's 'imagenet' list")},
                "label_map": "objectnet_to_imagenet.json",
                "num_classes": len(on_classes),
                "num_subset_classes": len(covered),
                "border_crop_px": crop,
                "border_crop_note": ("PIL crop (b, b, width-b, height-b) applied before the "
                                     "usual resize/center-crop; removes the red border"),
                "border_crop_source": crop_cites,
                "num_images": 18574,
                "num_images_source": {
                    "note": ("images in the 113 mapped folders of objectnet-1.0; figure as "
                             "commonly reported, not stated in any fetched source - unverified")},
                "metric_source": [cite("reference", "data/objectnet.py", "utils/misc.py"),
                                  cite("wise_ft", "src/datasets/objectnet.py")],
                "source": on_cite,
            },
            "imagenet-a": {
                "id": False,
                "folders": "wnid",
                "dir_names": ["imagenet-a"],
                "class_subset": subset("imagenet_a_wnids.txt"),
                "num_subset_classes": len(a_wnids),
                "label_map": None, "border_crop_px": 0,
                "num_images": 7500,
                "num_images_source": {
                    "note": ("Hendrycks et al., Natural Adversarial Examples (CVPR 2021); not "
                             "stated in hendrycks/natural-adv-examples README.md - unverified here")},
                "source": [cite("imagenet_a", "eval_many_models.py", "eval.py"),
                           cite("reference", "data/imagenet_a.py")],
            },
        },
        "metric_source": ref_eval,
        "classnames_source": {"package": "open_clip_torch",
                              "version": package_version("open_clip_torch"),
                              "path": "open_clip/zero_shot_metadata.py",
                              "name": "IMAGENET_CLASSNAMES"},
        "checks": notes,
    }

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "wnids.txt", wnids)
    write_text(out / "classnames.txt", names)
    write_text(out / "imagenet_r_wnids.txt", r_wnids)
    write_text(out / "imagenet_a_wnids.txt", a_wnids)
    write_json(out / "objectnet_to_imagenet.json", objectnet_json)
    write_json(out / "protocol.json", protocol)

    print(f"wnids: {len(wnids)}; classnames: {len(names)} ({len(set(names))} distinct); "
          f"imagenet-r: {len(r_wnids)}; imagenet-a: {len(a_wnids)}")
    print(f"objectnet: {len(on_classes)} of {n_on_folders} folders mapped -> "
          f"{len(covered)} ImageNet classes ({n_maps} pairs); border crop {crop} px")
    for n in notes:
        print(f"check: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
