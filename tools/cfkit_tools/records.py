"""The one reader of cfkit's output files and `--json` outputs: every tool of this package that
opens one of them, or parses what cfkit prints, does it here, by the keys cfkit writes.

Files (each under the directory it is named in):

    training run      run.json (RunRecord), report.json (TrainReport), metrics.jsonl
                      (metric_lines: "kind": "step" and "epoch" lines), profile.json (Profile),
                      checkpoints/<name>/checkpoint.json (Checkpoint) and config.json
                      (checkpoint_image_size)
    WiSE-FT sweep     wise-ft.json (WiseFt)
    evaluation suite  suite-<name>.json (Suite) and suite-<name>.md (suite_markdown)
    counterfactuals   run.json and run.worker-I-of-N.json (BuildRun), done.json (build_seconds)
    shards            manifest.json (Manifest)
    demo runs tree    zeroshot.json, calibration-*.json (`cfkit eval --json`: Evaluation),
                      cf-stats*.json (`cfkit inspect --json`: Inspection)

Printed outputs (`parse_*`): `cfkit eval --json`, `cfkit train --json`, `cfkit train
--print-config`, `cfkit inspect --json`, `cfkit doctor --json`, `cfkit parity --json`, `cfkit
presets --json`, and the JSON line the bench examples print last.

Every record is a thin typed view over the JSON object (`.raw`, for the tools that embed it in
their own output as it is): a property reads its key when asked, so a record that lacks a key
only fails a tool that needs it, with a `RecordError` that names the file (or command) and the
key. A missing file raises FileNotFoundError as usual; the `*_finished` / `*_built` helpers and
the `None`-returning readers are for the places where a missing file is expected.

`same_config` decides whether a finished run was made with the config asked for now.
"""
import glob
import json
import os
from typing import Any, NamedTuple, Optional


class RecordError(ValueError):
    """A cfkit record or output that is not what the tools expect: the message names the file
    (or the command) and the key."""


class Obj:
    """One JSON object of a record, and where it came from (a file or command, and the key path
    inside it) for error messages."""

    __slots__ = ("raw", "source", "keys")

    def __init__(self, raw, source, keys=""):
        if not isinstance(raw, dict):
            at = f" at {keys}" if keys else ""
            raise RecordError(f"{source}: expected a JSON object{at}, found {type(raw).__name__}")
        self.raw, self.source, self.keys = raw, source, keys

    def _key(self, key):
        return f"{self.keys}.{key}" if self.keys else str(key)

    def req(self, key) -> Any:
        """The value of `key`; a RecordError naming the file and the key without it."""
        if key not in self.raw:
            raise RecordError(f"{self.source}: missing key {self._key(key)!r}")
        return self.raw[key]

    def get(self, key, default=None) -> Any:
        return self.raw.get(key, default)

    def num(self, key) -> float:
        v = self.req(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise RecordError(f"{self.source}: {self._key(key)!r} is not a number: {v!r}")
        return v

    def string(self, key) -> str:
        v = self.req(key)
        if not isinstance(v, str):
            raise RecordError(f"{self.source}: {self._key(key)!r} is not a string: {v!r}")
        return v

    def array(self, key) -> list:
        v = self.req(key)
        if not isinstance(v, list):
            raise RecordError(f"{self.source}: {self._key(key)!r} is not a list: {v!r}")
        return v

    def obj(self, key) -> "Obj":
        return Obj(self.req(key), self.source, self._key(key))

    def opt_obj(self, key) -> Optional["Obj"]:
        """The object at `key`, or None where it is missing, null or empty."""
        v = self.raw.get(key)
        return Obj(v, self.source, self._key(key)) if v else None

    def objs(self, key) -> list:
        k = self._key(key)
        return [Obj(v, self.source, f"{k}[{i}]") for i, v in enumerate(self.array(key))]


def _load(path) -> Obj:
    """The JSON object in the file at `path` (FileNotFoundError when there is none)."""
    with open(path) as f:
        text = f.read()
    return _parse(text, str(path))


def _parse(text, source) -> Obj:
    try:
        return Obj(json.loads(text), source)
    except json.JSONDecodeError as e:
        raise RecordError(f"{source}: not JSON ({e})") from None


class _Record:
    """A typed view over one JSON object."""

    __slots__ = ("_o",)

    def __init__(self, o: Obj):
        self._o = o

    @property
    def raw(self) -> dict:
        """The JSON object as cfkit wrote it."""
        return self._o.raw

    @property
    def source(self) -> str:
        return self._o.source


# --- evaluations: `cfkit eval --json`, report.json's `eval`, each WiSE-FT point's ---------------

class Background(NamedTuple):
    """An evaluation set's split by background (data with the generator's ground truth)."""
    matching_correct: int
    matching_images: int
    other_correct: int
    other_images: int


class EvalSet(_Record):
    """One set of an evaluation."""

    @property
    def name(self) -> str:
        return self._o.string("name")

    @property
    def images(self) -> int:
        return self._o.num("images")

    @property
    def correct(self) -> int:
        return self._o.num("correct")

    @property
    def top1_pct(self) -> float:
        """Top-1 in percent, from the counts (0 for an empty set)."""
        return 100.0 * self.correct / max(self.images, 1)

    @property
    def fingerprint(self) -> str:
        """The set's data fingerprint."""
        return self._o.string("fingerprint")

    @property
    def background(self) -> Optional[Background]:
        """The split by background, None where the data carries no ground truth."""
        b = self._o.opt_obj("background")
        if b is None:
            return None
        return Background(*(b.num(k) for k in Background._fields))


class Evaluation(_Record):
    """`cfkit eval --json` (and the `eval` of a training report, and of each WiSE-FT point)."""

    @property
    def sets(self) -> list:
        return [EvalSet(o) for o in self._o.objs("sets")]

    def top1_pct(self) -> dict:
        """{set name: top-1 in percent}, in the evaluation's order."""
        return {s.name: s.top1_pct for s in self.sets}

    def set(self, name) -> Optional[EvalSet]:
        """The set called `name`, or None."""
        return next((s for s in self.sets if s.name == name), None)


def read_evaluation(path) -> Evaluation:
    """A stored `cfkit eval --json` (the demo's zeroshot.json, calibration-*.json)."""
    return Evaluation(_load(path))


def parse_evaluation(text) -> Evaluation:
    return Evaluation(_parse(text, "cfkit eval --json"))


# --- a training run ----------------------------------------------------------------------------

RUN_FILE, REPORT_FILE, METRICS_FILE, PROFILE_FILE = ("run.json", "report.json", "metrics.jsonl",
                                                     "profile.json")


def run_finished(run_dir) -> bool:
    """Whether the training run in `run_dir` has finished (its report.json is written last)."""
    return os.path.exists(os.path.join(run_dir, REPORT_FILE))


class RunRecord(_Record):
    """A training run's run.json: the resolved config and its hash, the cfkit that ran it."""

    @property
    def config_hash(self) -> str:
        return self._o.string("config_hash")

    @property
    def config(self) -> Optional[dict]:
        """The resolved config (None in a record that lacks it)."""
        c = self._o.get("config")
        return c if isinstance(c, dict) else None

    @property
    def cfkit_commit(self) -> Optional[str]:
        """The cfkit commit it was trained with; None for runs made before it was recorded."""
        return self._o.get("cfkit_commit")

    @property
    def distributed_backend(self) -> str:
        """The process group's backend of a data-parallel run."""
        return self._o.obj("distributed").string("backend")


def read_run(run_dir) -> RunRecord:
    return RunRecord(_load(os.path.join(run_dir, RUN_FILE)))


class TrainReport(_Record):
    """A finished run's report.json, or what `cfkit train --json` prints."""

    @property
    def evaluation(self) -> Evaluation:
        return Evaluation(self._o.obj("eval"))

    @property
    def best_top1_pct(self) -> Optional[float]:
        """The best validation top-1 in percent; None without validation."""
        best = self._o.opt_obj("best")
        return None if best is None else 100.0 * best.num("top1")

    @property
    def train_seconds(self) -> float:
        return self._o.num("train_seconds")

    @property
    def train_rows(self) -> int:
        return self._o.num("train_rows")


def read_report(run_dir) -> TrainReport:
    return TrainReport(_load(os.path.join(run_dir, REPORT_FILE)))


def finished_report(run_dir) -> Optional[TrainReport]:
    """The report of the run in `run_dir`, or None while it has not finished."""
    try:
        return read_report(run_dir)
    except FileNotFoundError:
        return None


def parse_train_report(text) -> TrainReport:
    return TrainReport(_parse(text, "cfkit train --json"))


class MetricLine(_Record):
    """One line of metrics.jsonl."""

    @property
    def kind(self) -> Optional[str]:
        """"step" (every `log_every` optimizer steps) or "epoch"."""
        return self._o.get("kind")

    @property
    def loss(self) -> float:
        return self._o.num("loss")

    @property
    def images_per_s(self) -> float:
        return self._o.num("images_per_s")


def metric_lines(run_dir, kind=None) -> list:
    """The lines of a run's metrics.jsonl, only those of `kind` ("step", "epoch") if given."""
    path = os.path.join(run_dir, METRICS_FILE)
    with open(path) as f:
        lines = [_parse(line, f"{path} line {i + 1}") for i, line in enumerate(f.read().splitlines())]
    return [MetricLine(o) for o in lines if kind is None or o.get("kind") == kind]


class Profile(_Record):
    """A run's profile.json (`cfkit train --profile`): seconds per phase, images, steps."""

    def __getitem__(self, key) -> float:
        return self._o.num(key)

    def as_dict(self) -> dict:
        """A copy, for a tool to extend and embed in its own output."""
        return dict(self._o.raw)


def read_profile(run_dir) -> Profile:
    return Profile(_load(os.path.join(run_dir, PROFILE_FILE)))


class Checkpoint(_Record):
    """A checkpoint's sidecar, checkpoint.json."""

    @property
    def config_hash(self) -> str:
        return self._o.string("config_hash")

    @property
    def step(self) -> int:
        return self._o.num("step")

    @property
    def classes(self) -> list:
        return self._o.array("classes")


def checkpoint_exists(ckpt_dir) -> bool:
    return os.path.exists(os.path.join(ckpt_dir, "checkpoint.json"))


def read_checkpoint(ckpt_dir) -> Checkpoint:
    return Checkpoint(_load(os.path.join(ckpt_dir, "checkpoint.json")))


def checkpoint_image_size(ckpt_dir) -> int:
    """The input size of a checkpoint's vision tower (its transformers config.json)."""
    return _load(os.path.join(ckpt_dir, "config.json")).num("image_size")


# --- WiSE-FT and the evaluation suite ----------------------------------------------------------

class WisePoint(_Record):
    @property
    def alpha(self) -> float:
        return self._o.num("alpha")

    @property
    def checkpoint(self) -> str:
        return self._o.string("checkpoint")

    @property
    def evaluation(self) -> Evaluation:
        return Evaluation(self._o.obj("eval"))


class WiseFt(_Record):
    """A WiSE-FT sweep's wise-ft.json: one point per α."""

    @property
    def points(self) -> list:
        return [WisePoint(o) for o in self._o.objs("points")]


def read_wise_ft(sweep_dir) -> WiseFt:
    return WiseFt(_load(os.path.join(sweep_dir, "wise-ft.json")))


def finished_wise_ft(sweep_dir) -> Optional[WiseFt]:
    """The sweep in `sweep_dir`, or None while it has not finished."""
    try:
        return read_wise_ft(sweep_dir)
    except FileNotFoundError:
        return None


class Suite(_Record):
    """suite-<name>.json of a checkpoint evaluated on a suite (`cfkit eval --suite`)."""

    @property
    def suite(self) -> str:
        return self._o.string("suite")

    @property
    def table(self) -> str:
        """The markdown table (the same text as suite-<name>.md)."""
        return self._o.string("table")


def read_suite(directory, name) -> Suite:
    return Suite(_load(os.path.join(directory, f"suite-{name}.json")))


def suite_markdown(directory, name) -> Optional[str]:
    """suite-<name>.md of `directory`, or None where the suite has not run."""
    path = os.path.join(directory, f"suite-{name}.md")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return f.read()


# --- counterfactual builds and shards ----------------------------------------------------------

def shards_built(shards_dir) -> bool:
    """Whether `shards_dir` holds a shard dataset (its manifest.json is written last)."""
    return os.path.exists(os.path.join(shards_dir, "manifest.json"))


class Manifest(_Record):
    """A shard dataset's manifest.json."""

    def split(self, name) -> Obj:
        return self._o.obj("splits").obj(name)

    def shard_files(self, split) -> list:
        """The shard files of `split`, relative to the dataset's directory."""
        return [s.string("file") for s in self.split(split).objs("shards")]

    def classes(self, split) -> list:
        return self.split(split).array("classes")


def read_manifest(shards_dir) -> Manifest:
    return Manifest(_load(os.path.join(shards_dir, "manifest.json")))


class BuildReport(_Record):
    """The `report` of a counterfactual build's run record (and of its done.json)."""

    @property
    def rows(self) -> int:
        return self._o.num("rows")

    @property
    def seconds(self) -> float:
        return self._o.num("seconds")

    @property
    def images_per_s(self) -> float:
        return self._o.num("images_per_s")

    @property
    def device_busy_fraction(self) -> float:
        return self._o.num("device_busy_fraction")

    @property
    def warm_images_per_s(self) -> float:
        """Images/s after the first device batch (0 for builds before it was recorded)."""
        return self._o.num("warm_images_per_s") if "warm_images_per_s" in self._o.raw else 0.0

    @property
    def warm_device_busy_fraction(self) -> float:
        return self._o.num("warm_device_busy_fraction") if "warm_device_busy_fraction" in self._o.raw else 0.0

    @property
    def device(self) -> str:
        return self._o.string("device")

    def mask_ratio_mean(self, strategy) -> float:
        return self._o.obj("mask_ratio").obj(strategy).num("mean")

    def donors(self, strategy) -> Optional[dict]:
        """{draws, own_image, same_class} of a strategy's donors (None: no donors, or a build
        made before they were counted)."""
        d = self._o.opt_obj("donors")
        return d.get(strategy) if d else None

    @property
    def random_donor_same_class_rate(self) -> float:
        return self._o.num("random_donor_same_class_rate")


class BuildRun(_Record):
    """A counterfactual build's run.json (or one worker's run.worker-I-of-N.json)."""

    @property
    def report(self) -> BuildReport:
        return BuildReport(self._o.obj("report"))


def read_build_run(shards_dir) -> BuildRun:
    return BuildRun(_load(os.path.join(shards_dir, "run.json")))


def read_build_workers(shards_dir) -> list:
    """The run records of a build's workers (run.worker-*.json), by worker."""
    return [BuildRun(_load(p))
            for p in sorted(glob.glob(os.path.join(shards_dir, "run.worker-*.json")))]


def build_seconds(shards_dir) -> Optional[float]:
    """The seconds a finished build took (done.json's report), or None: not finished, or made
    before done.json carried its report."""
    try:
        done = _load(os.path.join(shards_dir, "done.json"))
    except FileNotFoundError:
        return None
    report = done.get("report")
    if not isinstance(report, dict) or "seconds" not in report:
        return None
    return Obj(report, done.source, "report").num("seconds")


# --- `cfkit inspect --json` --------------------------------------------------------------------

class StrategyStats(_Record):
    """One strategy's statistics in `cfkit inspect --json`. The ground-truth ones (IoU with the
    garment and the background, garment masked) are None for data without the generator's mask,
    the histogram for data inspected before it was recorded."""

    @property
    def variants(self) -> int:
        return self._o.num("variants")

    @property
    def mask_ratio_mean(self) -> float:
        return self._o.num("mask_ratio_mean")

    @property
    def mask_ratio_histogram(self) -> Optional[list]:
        return self._o.get("mask_ratio_histogram")

    @property
    def same_class_donor_rate(self) -> float:
        return self._o.num("same_class_donor_rate")

    @property
    def object_iou_mean(self) -> Optional[float]:
        return self._o.get("object_iou_mean")

    @property
    def background_iou_mean(self) -> Optional[float]:
        return self._o.get("background_iou_mean")

    @property
    def object_masked_mean(self) -> Optional[float]:
        return self._o.get("object_masked_mean")

    def number(self, key) -> float:
        """Any other statistic by its key."""
        return self._o.num(key)


class Inspection(_Record):
    """`cfkit inspect --json` of a shard dataset."""

    @property
    def rows(self) -> int:
        return self._o.num("rows")

    @property
    def strategies(self) -> dict:
        """{strategy: StrategyStats}, in cfkit's order."""
        o = self._o.obj("strategies")
        return {name: StrategyStats(o.obj(name)) for name in o.raw}


def read_inspection(path) -> Inspection:
    """A stored `cfkit inspect --json` (the demo's cf-stats*.json)."""
    return Inspection(_load(path))


def parse_inspection(text) -> Inspection:
    return Inspection(_parse(text, "cfkit inspect --json"))


# --- other printed outputs ---------------------------------------------------------------------

class PrintedConfig(_Record):
    """`cfkit train --print-config`: the resolved config and its hash, as run.json records them."""

    @property
    def config_hash(self) -> str:
        return self._o.string("config_hash")

    @property
    def config(self) -> Optional[dict]:
        c = self._o.get("config")
        return c if isinstance(c, dict) else None


def parse_printed_config(text) -> PrintedConfig:
    return PrintedConfig(_parse(text, "cfkit train --print-config"))


class Doctor(_Record):
    """`cfkit doctor --json`."""

    @property
    def cam_ok(self) -> bool:
        return self._o.req("cam_ok")

    @property
    def cuda_available(self) -> bool:
        return self._o.req("cuda_available")

    @property
    def train_step_images_per_s(self) -> float:
        return self._o.num("train_step_images_per_s")


def parse_doctor(text) -> Doctor:
    return Doctor(_parse(text, "cfkit doctor --json"))


class Parity(_Record):
    """`cfkit parity --json`: the worst deviation from the fixtures against the tolerance."""

    @property
    def passed(self) -> bool:
        return self._o.req("passed")

    @property
    def worst(self) -> float:
        return self._o.num("worst")

    @property
    def tol(self) -> float:
        return self._o.num("tol")


def parse_parity(text) -> Parity:
    return Parity(_parse(text, "cfkit parity --json"))


def parse_presets(text, fields) -> dict:
    """`cfkit presets --json` as {preset: {field: value}} over the vision_config `fields`."""
    o = _parse(text, "cfkit presets --json")
    out = {}
    for name in o.raw:
        vision = o.obj(name).obj("vision_config")
        out[name] = {k: vision.req(k) for k in fields}
    return out


class BenchLine(_Record):
    """The JSON line a bench example (bench_data, bench_models, bench_train) prints last."""

    @property
    def images_per_s(self) -> float:
        return self._o.num("images_per_s")

    @property
    def images(self) -> int:
        return self._o.num("images")

    @property
    def pixel_sum(self) -> int:
        return self._o.num("pixel_sum")

    @property
    def optimizer_seconds_per_step(self) -> float:
        return self._o.num("optimizer_seconds_per_step")


def parse_bench_line(stdout, binary="bench example") -> BenchLine:
    lines = stdout.strip().splitlines()
    if not lines:
        raise RecordError(f"{binary}: printed nothing")
    return BenchLine(_parse(lines[-1], f"{binary} (last line)"))


# --- was a finished run made with the config asked for now? ------------------------------------

def _normalised(value):
    """`value` with every path-like string (one that contains a "/") normalised lexically."""
    if isinstance(value, dict):
        return {k: _normalised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    if isinstance(value, str) and "/" in value:
        return os.path.normpath(value)
    return value


def comparable_config(config) -> dict:
    """A resolved config as `same_config` compares it: without the `output` section, every
    path-like string normalised by os.path.normpath."""
    return _normalised({k: v for k, v in config.items() if k != "output"})


def same_config(run: RunRecord, asked: PrintedConfig) -> bool:
    """Whether the finished run with record `run` (its run.json) was made with the config `asked`
    for now (`cfkit train --print-config` of the same command line).

    Equal config hashes: the same. Otherwise the two resolved configs are compared, each without
    its `output` section and with every path-like string value normalised lexically
    (`os.path.normpath`). Why not the hash alone: the hash is of the resolved config as cfkit
    spells it, and cfkit changes the spelling once, not the meaning: relative paths in configs are
    normalised lexically (`configs/../data/x` becomes `data/x`) and the FashionShift configs move
    from configs/*.toml to configs/fashionshift/*.toml (so `configs/../data/x` is then reached as
    `configs/fashionshift/../../data/x`: `data/x` again). Both spell the same files, and a run made
    before the change must not be taken for one of another config. `output` says where a run is
    written, not what it computes. Everything else, hyperparameters included, must be equal; a
    record without the resolved config (and another hash) counts as another config."""
    if run.config_hash == asked.config_hash:
        return True
    have, want = run.config, asked.config
    if have is None or want is None:
        return False
    return comparable_config(have) == comparable_config(want)
