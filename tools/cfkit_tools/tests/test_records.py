"""cfkit_tools.records on the committed demo records (results/demo-runs) and on malformed ones."""
import copy
import json
import os
import tempfile
import unittest

from cfkit_tools import ROOT, records

RUNS = os.path.join(ROOT, "results", "demo-runs")
FT = os.path.join(RUNS, "seed0", "ft")


def printed(config, config_hash="0" * 64):
    """What `cfkit train --print-config` prints for `config`."""
    return records.parse_printed_config(json.dumps({"config_hash": config_hash, "config": config}))


class Committed(unittest.TestCase):
    """The readers on the records the demo grid wrote."""

    def test_training_run(self):
        rep = records.read_report(FT)
        self.assertAlmostEqual(rep.best_top1_pct, 71.4)
        self.assertGreater(rep.train_seconds, 0)
        self.assertEqual(rep.train_rows, 9000)  # 10,000 less the validation hold-out
        accs = rep.evaluation.top1_pct()
        self.assertEqual(list(accs)[0], "test-id")
        self.assertAlmostEqual(accs["test-id"], 71.4)
        self.assertEqual(len(rep.evaluation.set("test-id").fingerprint), 64)
        self.assertIsNone(rep.evaluation.set("no such set"))
        run = records.read_run(FT)
        self.assertEqual(len(run.config_hash), 64)
        self.assertEqual(run.config["train"]["method"], "ft")
        self.assertTrue(records.run_finished(FT))
        self.assertFalse(records.run_finished(os.path.join(RUNS, "seed0", "nothing")))
        self.assertIsNone(records.finished_report(os.path.join(RUNS, "seed0", "nothing")))

    def test_wise_ft_and_evaluations(self):
        sweep = records.read_wise_ft(os.path.join(RUNS, "seed0", "wise-ft"))
        alphas = [p.alpha for p in sweep.points]
        self.assertEqual(alphas[0], 0.0)
        self.assertEqual(alphas[-1], 1.0)
        self.assertIn("test-id", sweep.points[0].evaluation.top1_pct())
        self.assertIsNone(records.finished_wise_ft(os.path.join(RUNS, "seed0", "nothing")))
        b = records.read_evaluation(os.path.join(RUNS, "calibration-teacher.json")).set("val")
        self.assertEqual(b.background.matching_images + b.background.other_images, b.images)

    def test_inspection(self):
        stats = records.read_inspection(os.path.join(RUNS, "cf-stats.json"))
        self.assertEqual(stats.rows, 10000)
        st = stats.strategies["ObjMaskSingleFill(0.3)"]
        self.assertEqual(len(st.mask_ratio_histogram), 10)
        self.assertGreater(st.object_iou_mean, st.background_iou_mean)
        self.assertEqual(st.raw["variants"], st.variants)


class SameConfig(unittest.TestCase):
    """Whether a finished run was made with the config asked for now (the demo runner's check)."""

    def setUp(self):
        self.run = records.read_run(FT)
        self.config = copy.deepcopy(self.run.config)
        # The committed run's paths, as cfkit resolved them before paths were normalised.
        self.assertEqual(self.config["data"]["shards"], "configs/../data/fashionshift-cf-all")

    def renamed(self, **paths):
        c = copy.deepcopy(self.config)
        for key, value in paths.items():
            section, name = key.split("__")
            c[section][name] = value
        return c

    def test_same_hash_is_the_same_config(self):
        self.assertTrue(records.same_config(self.run, printed({}, self.run.config_hash)))

    def test_normalised_paths_are_the_same_config(self):
        new = self.renamed(data__shards="data/fashionshift-cf-all", eval__shards="data/fashionshift",
                           model__checkpoint="assets/teacher", output__out="runs/ft-demo")
        self.assertTrue(records.same_config(self.run, printed(new)))
        # The FashionShift configs one directory down (configs/fashionshift/*.toml).
        moved = self.renamed(data__shards="configs/fashionshift/../../data/fashionshift-cf-all",
                             eval__shards="configs/fashionshift/../../data/fashionshift",
                             model__checkpoint="configs/fashionshift/../../assets/teacher")
        self.assertTrue(records.same_config(self.run, printed(moved)))

    def test_output_section_is_ignored(self):
        new = self.renamed(output__out="somewhere/else")
        self.assertTrue(records.same_config(self.run, printed(new)))

    def test_a_changed_hyperparameter_is_another_config(self):
        new = self.renamed(data__shards="data/fashionshift-cf-all")
        new["schedule"]["max_lr"] = 2e-3
        self.assertFalse(records.same_config(self.run, printed(new)))
        new = copy.deepcopy(self.config)
        new["train"]["epochs"] = 5
        self.assertFalse(records.same_config(self.run, printed(new)))

    def test_other_files_are_another_config(self):
        new = self.renamed(data__shards="data/fashionshift-cf-rollout")
        self.assertFalse(records.same_config(self.run, printed(new)))
        new = self.renamed(data__shards="configs/data/fashionshift-cf-all")
        self.assertFalse(records.same_config(self.run, printed(new)))

    def test_a_record_without_its_config_is_another_config(self):
        bare = records.parse_printed_config(json.dumps({"config_hash": "0" * 64}))
        self.assertFalse(records.same_config(self.run, bare))


class Malformed(unittest.TestCase):
    """A record without a key: the error names the file and the key."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text if isinstance(text, str) else json.dumps(text))
        return path

    def test_missing_keys(self):
        path = self.write("report.json", {"best": {"step": 3}, "eval": {"sets": [{"name": "x"}]}})
        rep = records.read_report(self.dir)
        with self.assertRaisesRegex(records.RecordError, f"{path}: missing key 'train_seconds'"):
            rep.train_seconds
        with self.assertRaisesRegex(records.RecordError, f"{path}: missing key 'best.top1'"):
            rep.best_top1_pct
        with self.assertRaisesRegex(records.RecordError, r"missing key 'eval.sets\[0\].correct'"):
            rep.evaluation.top1_pct()
        self.write("run.json", {"config_hash": 3})
        with self.assertRaisesRegex(records.RecordError, "'config_hash' is not a string"):
            records.read_run(self.dir).config_hash

    def test_not_json(self):
        path = self.write("wise-ft.json", "{")
        with self.assertRaisesRegex(records.RecordError, f"{path}: not JSON"):
            records.read_wise_ft(self.dir)
        self.write("profile.json", [1, 2])
        with self.assertRaisesRegex(records.RecordError, "expected a JSON object"):
            records.read_profile(self.dir)

    def test_no_validation(self):
        self.write("report.json", {"best": None, "train_seconds": 6.0})
        self.assertIsNone(records.read_report(self.dir).best_top1_pct)

    def test_metrics_profile_and_builds(self):
        self.write("metrics.jsonl", "\n".join(json.dumps(x) for x in [
            {"kind": "step", "loss": 2.0, "images_per_s": 10.0}, {"kind": "epoch", "epoch": 0},
            {"kind": "step", "loss": 1.5, "images_per_s": 12.0}]) + "\n")
        self.assertEqual([m.loss for m in records.metric_lines(self.dir, "step")], [2.0, 1.5])
        self.assertEqual(len(records.metric_lines(self.dir)), 3)
        self.write("profile.json", {"images": 64, "backward_s": 1.5})
        prof = records.read_profile(self.dir)
        self.assertEqual(prof["backward_s"], 1.5)
        with self.assertRaisesRegex(records.RecordError, "missing key 'allreduce_s'"):
            prof["allreduce_s"]
        self.assertIsNone(records.build_seconds(self.dir))
        self.write("done.json", {"config_hash": "h"})
        self.assertIsNone(records.build_seconds(self.dir))
        self.write("done.json", {"config_hash": "h", "report": {"seconds": 120.0}})
        self.assertEqual(records.build_seconds(self.dir), 120.0)
        self.assertFalse(records.shards_built(self.dir))
        self.write("manifest.json", {"splits": {"train": {"classes": ["a", "b"], "shards": [
            {"file": "train-00000.parquet"}, {"file": "train-00001.parquet"}]}}})
        self.assertTrue(records.shards_built(self.dir))
        man = records.read_manifest(self.dir)
        self.assertEqual(man.shard_files("train"), ["train-00000.parquet", "train-00001.parquet"])
        self.assertEqual(man.classes("train"), ["a", "b"])
        with self.assertRaisesRegex(records.RecordError, "missing key 'splits.val'"):
            man.shard_files("val")
        self.write("run.json", {"report": {"rows": 10, "mask_ratio": {"S": {"mean": 0.25}}}})
        rep = records.read_build_run(self.dir).report
        self.assertEqual((rep.rows, rep.mask_ratio_mean("S")), (10, 0.25))

    def test_printed_outputs(self):
        line = records.parse_bench_line('warming up\n{"images": 4, "images_per_s": 2.5}\n')
        self.assertEqual((line.images, line.images_per_s), (4, 2.5))
        with self.assertRaisesRegex(records.RecordError, "bench example: printed nothing"):
            records.parse_bench_line("")
        presets = records.parse_presets(json.dumps({"tiny": {"vision_config": {"image_size": 56}}}),
                                        ("image_size",))
        self.assertEqual(presets, {"tiny": {"image_size": 56}})
        with self.assertRaisesRegex(records.RecordError,
                                    "cfkit presets --json: missing key 'tiny.vision_config'"):
            records.parse_presets(json.dumps({"tiny": {}}), ("image_size",))


if __name__ == "__main__":
    unittest.main()
