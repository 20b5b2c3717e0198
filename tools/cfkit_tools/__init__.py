"""cfkit's Python tools: the benchmark drivers, the FashionShift demo and its report, the GPU check
and the asset generators, as one package.

How to run a tool: as a module, from the repository root, with `tools` on the import path:

    PYTHONPATH=tools .venv/bin/python -m cfkit_tools.demo.run --report-only

The justfile's recipes run them so (`./just demo`, `./just bench-models`, ...); on the lent GPU
machine, `PYTHONPATH=tools python3 -m cfkit_tools.gpu_check ...`. No module edits `sys.path`:
the modules import each other as `cfkit_tools.<...>`, and relative paths in a tool's defaults are
from the repository root (`ROOT`), wherever it is run from.

Layout:

    records.py         the one reader of cfkit's output files (run directories, reports, build
                       records, manifests, `--json` outputs): typed accessors, and `same_config`,
                       whether a finished run was made with the config asked for now
    presets.py         the vision presets' shapes from `cfkit presets --json`
    gpu_check.py       `just gpu-check`: the GPU path in one short run
    imagenet_chain.py  the results table of `just imagenet` (tools/imagenet.sh)
    bench/             `just bench-*`: data, ddp, methods, models, pipeline, storage, train
    demo/              `just demo` and around it:
        run.py                   the runner (`just demo`)
        grid.py                  the grid of configs/fashionshift/benchmark.toml and the cfkit commands
        weight_rule.py           the validation weight rule (one function, both callers)
        report.py                RESULTS.md and results/fashionshift.json
        tables.py, frontiers.py, progress.py, commands.py   the report's sections
        tune_distill_weight.py   `just tune-fd-weight` / `just tune-kd-weight`
        cam_quality.py           `just cam-quality`
    assets/imagenet.py the ImageNet protocol assets of assets/imagenet/ (from public sources)
    tests/             unit tests (`python -m unittest discover -s tools/cfkit_tools/tests -t
                       tools`; `cargo test --test tools_py` runs them)

The shell scripts (bootstrap-venv.sh, ensure-*.sh, device-binary.sh, imagenet.sh) and
requirements.txt stay in tools/ beside this package.
"""
import os

# The repository root: tools/cfkit_tools/__init__.py is two levels below it.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
