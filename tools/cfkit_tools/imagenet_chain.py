"""Helpers of the ImageNet chain (tools/imagenet.sh, `just imagenet`), reading cfkit's records:

    python -m cfkit_tools.imagenet_chain image-size CHECKPOINT
        the input size of a checkpoint's vision tower (its config.json)
    python -m cfkit_tools.imagenet_chain table RUN
        RUN/results.md: a row per model (the suite's own markdown row, from suite-imagenet.md of
        the zero-shot checkpoint, each method's best checkpoint and each WiSE-FT point), printed
"""
import argparse
import pathlib

from cfkit_tools import records

METHODS = ["ft", "ft-fd", "masked-fd", "masked-fd-online", "lp-ft"]


def table(run):
    """Writes `run`/results.md and returns its path."""
    rows, head = [], None
    # The recipes' runs (tf32), then any other precision's (CFKIT_PRECISION: METHOD-bf16, ...).
    found = [("zero-shot", run / "zeroshot")] + [
        (m, run / m / "checkpoints" / "best") for m in METHODS] + [
        (d.name, d / "checkpoints" / "best") for m in METHODS
        for d in sorted(run.glob(f"{m}-*")) if d.name[len(m) + 1:] in ("bf16", "fp32")]
    for w in sorted(run.glob("wise-ft-*")):
        for p in records.read_wise_ft(w).points:
            found.append((f"WiSE-FT({w.name[8:]}, α={p.alpha:.1f})", pathlib.Path(p.checkpoint)))
    for label, ckpt in found:
        md = records.suite_markdown(ckpt, "imagenet")
        if md is None:
            continue
        lines = md.splitlines()
        head = head or lines[:2]
        rows.append("| " + label + " |" + lines[2].split("|", 2)[2])
    out = run / "results.md"
    out.write_text("\n".join((head or []) + rows) + "\n")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("image-size").add_argument("checkpoint", type=pathlib.Path)
    sub.add_parser("table").add_argument("run", type=pathlib.Path)
    a = ap.parse_args()
    if a.cmd == "image-size":
        print(records.checkpoint_image_size(a.checkpoint))
    else:
        out = table(a.run)
        print(out.read_text())
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
