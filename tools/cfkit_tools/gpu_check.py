"""`just gpu-check`: the GPU path of cfkit proven in one short run, with one JSON and one markdown.

On the lent GPU machine (one H200, PyTorch 2.11 in its own python3, no Rust, no network):

    PYTHONPATH=tools python3 -m cfkit_tools.gpu_check --cfkit target/device/cfkit --device cuda --out $OUT

with the binary of `just device-binary` (the script points LD_LIBRARY_PATH at the running
python's torch/lib, so the binary links that machine's libtorch). Everywhere else, and in CI:

    PYTHONPATH=tools python -m cfkit_tools.gpu_check --cfkit target/debug/cfkit --device cpu --smoke --out DIR

Sections (each timed; a failing one is recorded and the others still run; exit 1 if any failed):
  doctor      `cfkit doctor` on the device (CUDA visible, a train step and an MMCAM pass)
  parity      `cfkit parity` on the committed PyTorch fixtures: fp32 at the CPU tolerance (max-abs
              1e-4), and the model cast to bf16 at max-abs <= 10 % of each quantity's largest
              magnitude (the CPU reaches 4 % on the CAMs)
  bf16        FT from scratch, N steps in bf16 autocast and in fp32 on the same data and seed:
              the loss curves must stay within a band (on the CPU through libtorch's CPU autocast)
  throughput  forward+backward images/s of the model at the batch, cfkit (`doctor`) next to
              PyTorch eager (transformers CLIPVisionModelWithProjection, same shape, same batch)
  ft_step     a full FT step (`cfkit train`) in bf16 and in fp32 + TF32, ViT-B/32 at batch 256 and
              ViT-B/16 at 128, next to PyTorch eager with torch.autocast(bfloat16) / TF32 and
              AdamW(fused=True); images/s, MFU of each (3 x forward FLOPs per image over the GPU's
              dense peak), and cfkit's host reads (`--profile`)
  pipeline    `build-counterfactuals` images/s and device-busy fraction at the model's size with a
              random teacher, stages overlapped and not
  methods     images/s of FT, offline masked FD and online masked FD (`cfkit train`, bf16), and a full
              FT step in PyTorch eager at the same batch and precision (forward, CE, backward, clip,
              fused AdamW)
  ddp         2 ranks of one data-parallel job against one process of the whole batch: Gloo (CUDA
              gradients through host memory) and, on CUDA, NCCL (one GPU per rank; with a single GPU
              its refusal is recorded, not counted)
  demo        FashionShift end to end as `just demo` runs it: the data, the grid's counterfactual shards
              built on the device, FT and the headline masked FD (seed 0), compared with the CPU grid's
              records in results/demo-runs (data fingerprint, mask statistics, top-1 within 1.5 points);
              needs Fashion-MNIST (--fashion-mnist; at the default path for identical data files)
Every cfkit call records its peak device memory (CUDA: nvidia-smi sampled every 0.1 s, minus the
idle reading; CPU: the children's peak RSS).
Sizes: --smoke uses the `tiny` preset (56 px), 32 images and a few steps; the full run uses
`vit-b-32` at 224 px, batch 256 for throughput, 256 images for the pipeline, 100 steps for bf16.
"""
import argparse
import json
import os
import pathlib
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import torch
from PIL import Image

import cfkit_tools
from cfkit_tools import records
from cfkit_tools.demo.grid import GRID, HEADLINE, fd_weight, methods, ood_mean, slug

ROOT = pathlib.Path(cfkit_tools.ROOT).resolve()
PRESETS = {  # vision shapes of cfkit's presets (`cfkit presets --json`); checked at start
    "tiny": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, image_size=56, patch_size=8,
                 projection_dim=128),
    "vit-b-32": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, image_size=224,
                     patch_size=32, projection_dim=512),
    "vit-b-16": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, image_size=224,
                     patch_size=16, projection_dim=512),
}
# Dense peak tensor-core FLOP/s per device name (NVIDIA's data sheets, without sparsity), for MFU:
# (bf16, tf32). H100 SXM and H200 share the compute die; the PCIe H100 runs at lower clocks.
PEAK_FLOPS = [("H200", 989.4e12, 494.7e12), ("H100 PCIe", 756.0e12, 378.0e12), ("H100", 989.4e12, 494.7e12)]


def forward_flops(p):
    """FLOPs of one image's forward through a CLIP ViT of shape `p` (a multiply-add = 2 FLOPs): the
    patch embedding, per block 24·T·D² (q, k, v, out projections 8·T·D², MLP of width 4D 16·T·D²) and
    4·T²·D (scores and the weighted sum), and the projection; norms, softmax and GELU left out.
    ViT-B/32 at 224 px: 8.8 GFLOP; a training step is counted as 3 forwards (forward + backward)."""
    d, layers, side = p["hidden_size"], p["num_hidden_layers"], p["image_size"] // p["patch_size"]
    t = side * side + 1
    patch = 2 * (side * side) * (3 * p["patch_size"] ** 2) * d
    return patch + layers * (24 * t * d * d + 4 * t * t * d) + 2 * d * p["projection_dim"]


def peak_flops(precision):
    """The lent GPU's dense peak for `precision` (bf16, or tf32 for fp32 work), or None."""
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(0)
    for key, bf16, tf32 in PEAK_FLOPS:
        if key in name:
            return bf16 if precision == "bf16" else tf32
    return None


def demo_scores(run):
    """Test-id top-1, the headline OOD number (the grid's mean over its shifted sets; percent) and
    test-id's data fingerprint, from the report.json of the run in `run`."""
    evaluation = records.read_report(run).evaluation
    accs = evaluation.top1_pct()
    test_id = evaluation.set("test-id")
    if test_id is None:
        raise records.RecordError(f"{run / records.REPORT_FILE}: no test-id set in eval.sets")
    return dict(test_id=accs["test-id"], ood_shifted=ood_mean(accs), fingerprint=test_id.fingerprint)


class Memory:
    """Peak device memory of a child process while it runs."""

    def __init__(self, device):
        self.cuda = device.startswith("cuda")
        self.peak, self.base, self._stop = 0, 0, threading.Event()

    @staticmethod
    def _used():
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True)
        return int(out.stdout.split()[0]) if out.returncode == 0 and out.stdout.strip() else 0

    def __enter__(self):
        if self.cuda:
            self.base = self._used()
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def _poll(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._used())
            time.sleep(0.1)

    def __exit__(self, *exc):
        if self.cuda:
            self._stop.set()
            self._thread.join()

    def mib(self):
        if self.cuda:
            return max(0, self.peak - self.base)
        return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


class Check:
    def __init__(self, args):
        self.args, self.out = args, pathlib.Path(args.out)
        self.work = self.out / "work"
        self.preset = "tiny" if args.smoke else "vit-b-32"
        self.size = PRESETS[self.preset]["image_size"]
        self.env = dict(os.environ)
        if args.device.startswith("cuda"):
            lib = pathlib.Path(torch.__file__).parent / "lib"
            self.env["LD_LIBRARY_PATH"] = f"{lib}:{self.env.get('LD_LIBRARY_PATH', '')}"
        self.results = {}

    def cfkit(self, *args, json_out=False):
        cmd = [self.args.cfkit, *map(str, args)]
        with Memory(self.args.device) as mem:
            t0 = time.perf_counter()
            p = subprocess.run(cmd, capture_output=True, text=True, env=self.env)
            secs = time.perf_counter() - t0
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()[-2000:]}")
        info = dict(seconds=secs, peak_device_mib=mem.mib())
        if json_out:
            # The JSON object, without anything printed before it (parsed by the caller, records).
            return p.stdout[p.stdout.index("{"):], info
        return p.stdout, info

    def section(self, name, fn):
        t0 = time.perf_counter()
        try:
            res = fn()
            res["ok"] = res.get("ok", True)
        except Exception as e:  # noqa: BLE001 -- recorded, the other sections still run
            res = dict(ok=False, error=f"{type(e).__name__}: {e}"[:3000])
        res["seconds"] = round(time.perf_counter() - t0, 2)
        self.results[name] = res
        print(f"[{name}] {'ok' if res['ok'] else 'FAILED'} in {res['seconds']} s", flush=True)

    # --- data, made here so nothing has to be carried ---------------------------------------
    def data(self):
        """Image shards of the model's size: 10 classes of smooth coloured noise (learnable)."""
        shards = self.work / "shards"
        if records.shards_built(shards):
            return shards
        n = 32 if self.args.smoke else 256
        rng = np.random.default_rng(0)
        folder = self.work / "images"
        for i in range(n):
            c = i % 10
            base = np.array([(c * 53) % 256, (c * 97) % 256, (c * 151) % 256], dtype=np.float32)
            img = base + rng.normal(0, 40, (self.size // 4, self.size // 4, 3))
            img = Image.fromarray(img.clip(0, 255).astype(np.uint8)).resize((self.size, self.size))
            (folder / f"c{c}").mkdir(parents=True, exist_ok=True)
            img.save(folder / f"c{c}" / f"{i:04d}.png")
        self.cfkit("prepare", "--image-folder", folder, "--out", shards, "--image-size", self.size, "-q")
        return shards

    def hf_model(self, device="cpu", preset=None):
        """The preset's vision tower in transformers (CLIPVisionModelWithProjection, QuickGELU, SDPA
        attention), seeded random weights, on `device`: the random teacher and the PyTorch eager
        reference."""
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
        p = PRESETS[preset or self.preset]
        torch.manual_seed(0)
        cfg = CLIPVisionConfig(intermediate_size=4 * p["hidden_size"], hidden_act="quick_gelu", layer_norm_eps=1e-5,
                               attn_implementation="sdpa", **p)
        return CLIPVisionModelWithProjection(cfg).to(device)

    def timed(self, step, batch, reps):
        """Images/s of `step` over `reps` calls after one warm-up (device synchronised around)."""
        sync = torch.cuda.synchronize if self.args.device.startswith("cuda") else (lambda: None)
        step()
        sync()
        t0 = time.perf_counter()
        for _ in range(reps):
            step()
        sync()
        return batch * reps / (time.perf_counter() - t0)

    def teacher(self):
        """A seeded random teacher of the preset (transformers) and a 10-class head."""
        from safetensors.torch import save_file
        tdir = self.work / "teacher"
        w, h = tdir / "model.safetensors", tdir / "head.safetensors"
        if w.exists() and h.exists():
            return w, h
        tdir.mkdir(parents=True, exist_ok=True)
        p = PRESETS[self.preset]
        model = self.hf_model()
        save_file({k: v.contiguous() for k, v in model.state_dict().items() if not k.endswith("position_ids")},
                  str(w), metadata={"format": "pt"})
        head = torch.randn(10, p["projection_dim"])
        head = 100.0 * head / head.norm(dim=-1, keepdim=True)
        save_file({"head.weight": head.contiguous(), "head.bias": torch.zeros(10)}, str(h),
                  metadata={"cfkit.head": json.dumps(dict(classes=[f"c{i}" for i in range(10)], source="random",
                                                          hash=""))})
        return w, h

    def train_config(self, name, method, precision, steps, extra=""):
        shards = self.data()
        batch = 8 if self.args.smoke else 64
        epochs = max(1, -(-steps * batch // (32 if self.args.smoke else 256)))
        cfg = self.work / f"{name}.toml"
        cfg.write_text(
            f'[model]\nname = "{self.preset}"\nhead_init_scale = 10.0\n[data]\nshards = "{shards.resolve()}"\n'
            f'split = "train"\nshuffle_buffer = 256\n[train]\nmethod = "{method}"\nepochs = {epochs}\n'
            f'batch_size = {batch}\nseed = 0\ndevice = "{self.args.device}"\nprecision = "{precision}"\n'
            f'log_every = 1\ncheckpoint_every = 100000\n[schedule]\nkind = "cosine-warmup"\nbase_lr = 1e-4\n'
            f'warmup_pct = 0.1\n{extra}')
        return cfg

    def steps(self, run):
        """The "step" lines of a run's metrics.jsonl (log_every = 1: one per optimizer step)."""
        return records.metric_lines(run, "step")

    def losses(self, run):
        return [m.loss for m in self.steps(run)]

    # --- sections ---------------------------------------------------------------------------
    def doctor(self):
        batch = 8 if self.args.smoke else 256
        text, info = self.cfkit("doctor", "--device", self.args.device, "--preset", self.preset, "--batch", batch,
                                "--json", json_out=True)
        rep = records.parse_doctor(text)
        ok = rep.cam_ok and (rep.cuda_available or not self.args.device.startswith("cuda"))
        return dict(ok=ok, report=rep.raw, **info)

    def parity(self):
        fixtures = ROOT / "tests/fixtures/parity"
        text, info = self.cfkit("parity", "--fixtures", fixtures, "--device", self.args.device, "--tol", "1e-4",
                                "--json", json_out=True)
        text16, info16 = self.cfkit("parity", "--fixtures", fixtures, "--device", self.args.device, "--dtype",
                                    "bf16", "--json", json_out=True)
        fp32, bf16 = records.parse_parity(text), records.parse_parity(text16)
        return dict(ok=fp32.passed and bf16.passed, max_abs=fp32.worst, tol=fp32.tol,
                    bf16_worst_relative=bf16.worst, bf16_rel_tol=bf16.tol, fp32=fp32.raw, bf16=bf16.raw,
                    runs=dict(fp32=info, bf16=info16))

    def bf16(self):
        steps = 6 if self.args.smoke else 100
        # bf16 autocast runs on the CPU too (libtorch's CPU autocast), slowly: the smoke checks the path.
        precisions = ["fp32", "bf16"]
        curves, infos = {}, {}
        for p in precisions:
            run = self.work / f"bf16-{p}"
            shutil.rmtree(run, ignore_errors=True)
            _, infos[p] = self.cfkit("train", "--config", self.train_config(f"ft-{p}", "ft", p, steps), "--out", run,
                                     "-q")
            curves[p] = self.losses(run)[:steps]
        res = dict(steps=steps, curves=curves, runs=infos)
        if "bf16" in curves:
            a, b = np.array(curves["fp32"]), np.array(curves["bf16"])
            n = min(len(a), len(b))
            rel = np.abs(a[:n] - b[:n]) / np.maximum(np.abs(a[:n]), 1e-6)
            # Band: bf16 keeps 8 mantissa bits (relative step 2^-8 = 0.4 %); over 100 optimizer steps the
            # curves may drift apart, so the band is 5 % of the fp32 loss at every step and 2 % on the mean
            # of the last 10.
            k = min(10, n)
            tail = abs(a[n - k:n].mean() - b[n - k:n].mean()) / abs(a[n - k:n].mean())
            res.update(max_rel_diff=float(rel.max()), last10_rel_diff=float(tail),
                       ok=bool(rel.max() <= 0.05 and tail <= 0.02))
        return res

    def throughput(self):
        batch = 8 if self.args.smoke else 256
        reps = 3 if self.args.smoke else 10
        # Both sides: one untimed warm-up call, then the mean over `reps` calls.
        text, info = self.cfkit("doctor", "--device", self.args.device, "--preset", self.preset, "--batch", batch,
                                "--reps", reps, "--json", json_out=True)
        cfkit_ips = records.parse_doctor(text).train_step_images_per_s
        p = PRESETS[self.preset]
        dev = torch.device(self.args.device)
        model = self.hf_model(dev)
        x = torch.randn(batch, 3, p["image_size"], p["image_size"], device=dev)

        def step():
            model.zero_grad(set_to_none=True)
            model(pixel_values=x).image_embeds.square().mean().backward()

        eager = self.timed(step, batch, reps)
        peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None
        return dict(batch=batch, cfkit_images_per_s=cfkit_ips, pytorch_images_per_s=eager,
                    time_ratio_cfkit_over_pytorch=eager / cfkit_ips,
                    pytorch_peak_device_mib=peak, cfkit=info)

    def build(self, name, shards, batch, extra="", *flags):
        """`cfkit build-counterfactuals` of ObjMaskSingleFill(0.3), K = 2, with the random teacher over
        `shards` into work/`name` (`extra`: more [counterfactuals] lines); its report and call info."""
        w, h = self.teacher()
        cfg = self.work / f"build-{name}.toml"
        cfg.write_text(
            f'[source]\nshards = "{shards.resolve()}"\nsplit = "train"\n[teacher]\nmodel = "{self.preset}"\n'
            f'weights = "{w.resolve()}"\nhead = "{h.resolve()}"\n[counterfactuals]\ncam = "mmcam"\n'
            f'strategies = ["ObjMaskSingleFill(0.3)"]\nvariants = 2\nseed = 0\n'
            f'batch_size = {batch}\ndevice = "{self.args.device}"\n{extra}')
        dest = self.work / name
        shutil.rmtree(dest, ignore_errors=True)
        _, info = self.cfkit("build-counterfactuals", "--config", cfg, "--out", dest, "-q", *flags)
        return records.read_build_run(dest).report, info

    def pipeline(self):
        shards, out = self.data(), {}
        for mode in ["on", "off"]:
            rep, info = self.build(f"cf-{mode}", shards, 8 if self.args.smoke else 64, "", "--pipeline", mode)
            out[mode] = dict(images_per_s=rep.images_per_s, device_busy_fraction=rep.device_busy_fraction,
                             **info)
        # The same shards either way (the overlap changes timing, not output).
        same = all((self.work / "cf-on" / f).read_bytes() == (self.work / "cf-off" / f).read_bytes()
                   for f in records.read_manifest(self.work / "cf-on").shard_files("train"))
        # At the recipes' shape: K = 2 compact over the step section's images (>= 2,048 at 224 px),
        # batches of 256, bf16 and fp32 + TF32; warm rates leave set-up and the first batch out.
        big = self.step_data(self.step_images())
        for precision in ("bf16", "tf32"):
            rep, info = self.build(f"cf-{precision}", big, 8 if self.args.smoke else 256,
                                   f'compact = true\nprecision = "{precision}"\n')
            out[f"compact K=2 {precision}"] = dict(
                images=rep.rows, images_per_s=rep.images_per_s, device_busy_fraction=rep.device_busy_fraction,
                warm_images_per_s=rep.warm_images_per_s, warm_device_busy_fraction=rep.warm_device_busy_fraction,
                **info)
        return dict(ok=same, identical_output=same, **out)

    def methods(self):
        cf = self.work / "cf-off"
        if not records.shards_built(cf):
            raise RuntimeError("needs the pipeline section's shards")
        w, h = self.teacher()
        teacher_ckpt = self.work / "teacher-ckpt"
        if not records.checkpoint_exists(teacher_ckpt):
            self.cfkit("convert", "--model", self.preset, "--weights", w, "--head", h, "--out", teacher_ckpt)
        steps = 4 if self.args.smoke else 30
        out = {}
        for name, extra in [
            ("ft", ""),
            ("offline masked FD", '[distill]\nimages = "masked"\nstrategy = "ObjMaskSingleFill(0.3)"\nweight = 1.0\n'),
            ("online masked FD", '[distill]\nimages = "masked"\nmode = "online"\n'
                                 'strategy = "ObjMaskSingleFill(0.3)"\nweight = 1.0\n'),
        ]:
            method = "ft" if name == "ft" else "ft-fd"
            # bf16, what `auto` trains in on a GPU (on the CPU the smoke checks the bf16 path).
            cfg = self.train_config(name.replace(" ", "-"), method, "bf16", steps, extra)
            text = cfg.read_text().replace(f'name = "{self.preset}"\nhead_init_scale = 10.0',
                                           f'checkpoint = "{teacher_ckpt.resolve()}"')
            text = text.replace(f'shards = "{self.data().resolve()}"', f'shards = "{cf.resolve()}"')
            cfg.write_text(text)
            run = self.work / f"method-{name.replace(' ', '-')}"
            shutil.rmtree(run, ignore_errors=True)
            _, info = self.cfkit("train", "--config", cfg, "--out", run, "-q")
            # Median over the steps after the first (warm-up: allocations, kernel selection).
            ips = [m.images_per_s for m in self.steps(run)][1:]
            out[name] = dict(images_per_s=float(np.median(ips)) if ips else None, steps=len(ips) + 1, **info)
        base = out["ft"]["images_per_s"]
        for v in out.values():
            if base and v["images_per_s"]:
                v["time_over_ft"] = base / v["images_per_s"]
        out["pytorch eager ft"] = self.eager_ft_step(8 if self.args.smoke else 64, precision="bf16")
        if base:
            out["ft"]["time_ratio_cfkit_over_pytorch"] = out["pytorch eager ft"]["images_per_s"] / base
        return out

    def ddp(self):
        """Data-parallel FT: 2 ranks of one job on this machine (`cuda:LOCAL_RANK`, LOCAL_RANK = rank mod
        the GPU count) against one process of the whole batch, same steps, weights compared. Gloo
        (`CFKIT_DIST_BACKEND=gloo`: CUDA gradients staged through host memory) always; NCCL on CUDA
        (gradients reduced on the device), which needs one GPU per rank: with a single GPU NCCL refuses
        two ranks on it, and its error is recorded, not counted as a failure."""
        from safetensors.torch import load_file
        steps = 4 if self.args.smoke else 10
        cfg = self.train_config("ddp", "ft", "fp32", steps)
        one = self.work / "ddp-one"
        shutil.rmtree(one, ignore_errors=True)
        _, info = self.cfkit("train", "--config", cfg, "--out", one, "-q")
        cuda = self.args.device.startswith("cuda")
        gpus = max(torch.cuda.device_count(), 1) if cuda else 1
        # The keys' biases have a zero gradient in exact arithmetic (softmax ignores a shift shared by
        # all keys), so AdamW turns rounding noise into full steps there: compared apart (tests/ddp.rs).
        tol = 1e-3 if cuda else 1e-5

        def weights(run):
            d = run / "checkpoints/last"
            return {**load_file(str(d / "model.safetensors")), **load_file(str(d / "head.safetensors"))}

        ref = weights(one)
        out = dict(steps=len(self.steps(one)), single=info, tol=tol, gpus=gpus)
        for backend in (["gloo", "nccl"] if cuda else ["gloo"]):
            run = self.work / f"ddp-{backend}"
            shutil.rmtree(run, ignore_errors=True)
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = str(sock.getsockname()[1])
            procs = []
            t0 = time.perf_counter()
            for r in range(2):
                env = dict(self.env, RANK=str(r), WORLD_SIZE="2", LOCAL_RANK=str(r % gpus), MASTER_ADDR="127.0.0.1",
                           MASTER_PORT=port)
                env.pop("CFKIT_DIST_BACKEND", None)
                if backend == "gloo":
                    env["CFKIT_DIST_BACKEND"] = "gloo"
                procs.append(subprocess.Popen([self.args.cfkit, "train", "--config", str(cfg), "--out", str(run), "-q",
                                               "--dist-timeout", "120"], env=env, stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE, text=True))
            outs = [p.communicate() for p in procs]
            res = dict(returncodes=[p.returncode for p in procs], seconds=time.perf_counter() - t0)
            if all(p.returncode == 0 for p in procs):
                used = records.read_run(run).distributed_backend
                w = weights(run)
                res.update(backend=used, ok=True, max_abs=max(
                    (w[k] - ref[k]).abs().max().item() for k in ref if "k_proj.bias" not in k))
                res["ok"] = res["max_abs"] <= tol and used == backend
            else:
                res.update(ok=False, stderr=[e[-1500:] for _, e in outs])
            out[backend] = res
        nccl = out.get("nccl")
        nccl_needs_gpus = nccl is not None and not nccl["ok"] and gpus < 2
        if nccl_needs_gpus:
            nccl["note"] = "not counted: NCCL needs one GPU per rank and this machine has one"
        out["ok"] = out["gloo"]["ok"] and (nccl is None or nccl["ok"] or nccl_needs_gpus)
        return out

    def demo(self):
        """FashionShift end to end on the device, as `just demo` runs it: generate the data, build the
        grid's counterfactual shards (configs/fashionshift/build-all.toml: the committed teacher, nine strategies,
        K = 4) on the device, then FT and the headline masked FD (ObjMaskSingleFill(0.3), weight 0.3,
        offline) with seed 0 and the grid's exact flags. Compared with the CPU grid's committed records
        (results/demo-runs): the generated test split's fingerprint (the generator is deterministic, so
        the data must be byte-identical), each strategy's mean mask ratio and object IoU (CAMs on the
        device differ from the CPU's by rounding only), and each run's test-id top-1 and shifted-OOD mean
        against seed 0 on the CPU. Smoke: 1 % of the data, one epoch, no comparison."""
        smoke = self.args.smoke
        data, cf = self.work / "fashionshift", self.work / "fashionshift-cf-all"
        # Every split and the default options, as `just demo` makes them: the dataset's config hash (and
        # so its files' bytes and fingerprints) records the options, the Fashion-MNIST path included, so
        # the files match the CPU grid's only with Fashion-MNIST at its default path.
        shutil.rmtree(data, ignore_errors=True)
        _, gen = self.cfkit("demo-data", "--out", data, "--fashion-mnist", self.args.fashion_mnist, "-q",
                            *(["--scale", "0.01"] if smoke else []))
        shutil.rmtree(cf, ignore_errors=True)
        _, build = self.cfkit("build-counterfactuals", "--config", ROOT / "configs/fashionshift/build-all.toml", "--out", cf, "-q",
                              "--set", f'source.shards="{data.resolve()}"',
                              "--set", f'teacher.weights="{ROOT / "assets/teacher/model.safetensors"}"',
                              "--set", f'teacher.head="{ROOT / "assets/teacher/head.safetensors"}"',
                              "--set", f'counterfactuals.device="{self.args.device}"')
        rep = records.read_build_run(cf).report
        build.update(images_per_s=rep.images_per_s, device_busy_fraction=rep.device_busy_fraction,
                     rows=rep.rows, device=rep.device)
        text, _ = self.cfkit("inspect", cf, "--json", "--n", "2", "--out", self.work / "cf-sheet.png", json_out=True)
        stats = records.parse_inspection(text)
        out = dict(generate=gen, build=build, runs={})
        refs = ROOT / "results/demo-runs"
        # The grid's own runs (configs/fashionshift/benchmark.toml through cfkit_tools.demo.grid): FT, and the
        # headline at 0.3, the weight the validation rule picked for it on the CPU grid.
        grid = {m["key"]: m for m in methods(fd_weight())}
        for key in ["ft", f"fd-{slug(HEADLINE)}-w0.3"]:
            m = grid[key]
            run = self.work / f"demo-{key}"
            shutil.rmtree(run, ignore_errors=True)
            sets = [f"data.shards=\"{cf.resolve()}\"", f"eval.shards=\"{data.resolve()}\"",
                    f"train.epochs={1 if smoke else GRID['epochs']}", "train.seed=0",
                    f'train.device="{self.args.device}"', *m["set"]]
            if smoke:
                sets.append("data.val_holdout=20")
            args = [a for kv in sets for a in ("--set", kv)]
            _, info = self.cfkit("train", "--config", ROOT / m["config"], *args, "--out", run, "-q")
            res = dict(run=info, **demo_scores(run))
            ref = refs / "seed0" / key
            if not smoke and records.run_finished(ref):
                cpu = demo_scores(ref)
                res["cpu_seed0"] = cpu
                res["delta"] = {k: res[k] - cpu[k] for k in ("test_id", "ood_shifted")}
                res["cpu_fingerprint"] = cpu["fingerprint"]
            out["runs"][key] = res
        if smoke:
            out["ok"] = all(r["test_id"] > 0 for r in out["runs"].values())
            return out
        # Tolerances. Top-1 (points): a GPU run and a CPU run of the same seed diverge like two seeds do
        # after a few hundred steps; 1.5 points is about three times the seed spread of the pair's
        # difference (seed std of test-id / shifted OOD over the grid's 3 seeds: FT 0.16 / 0.07,
        # headline 0.35 / 0.39). Masks: a strategy's mean mask ratio and object IoU within 0.01 (only a
        # CAM tie broken differently can change a mask).
        cpu_stats = records.read_inspection(refs / "cf-stats.json").strategies
        diffs = {name: {f: abs(st.number(f) - cpu_stats[name].number(f)) for f in ("mask_ratio_mean", "object_iou_mean")}
                 for name, st in stats.strategies.items() if name in cpu_stats}
        out["mask_stats_max_abs_diff"] = max(max(d.values()) for d in diffs.values())
        out["mask_stats_diff"] = diffs
        same_data = all(r.get("fingerprint") == r.get("cpu_fingerprint") for r in out["runs"].values())
        out["identical_test_data"] = same_data
        close = all(abs(d) <= 1.5 for r in out["runs"].values() for d in r.get("delta", {"missing": 99}).values())
        out["ok"] = bool(same_data and close and out["mask_stats_max_abs_diff"] <= 0.01 and len(diffs) == 9)
        return out

    def eager_ft_step(self, batch, preset=None, precision=None, reps=None):
        """A full FT step in PyTorch eager at the same shape and batch: forward, head, cross-entropy,
        backward, gradient clipping at 1, AdamW (wd 0.1) -- what `cfkit train` does per step, without
        its data loading. `precision`: None (fp32, PyTorch's defaults, the default AdamW), or as a GPU
        user runs it: "bf16" (torch.autocast bfloat16) or "tf32" (TF32 matmuls and convolutions),
        both with clip_grad_norm_(foreach=True) and AdamW(fused=True)."""
        p = PRESETS[preset or self.preset]
        dev = torch.device(self.args.device)
        model = self.hf_model(dev, preset)
        head = torch.nn.Linear(p["projection_dim"], 10).to(dev)
        params = list(model.parameters()) + list(head.parameters())
        fused = precision is not None
        opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.1, fused=fused or None)
        x = torch.randn(batch, 3, p["image_size"], p["image_size"], device=dev)
        y = torch.randint(0, 10, (batch,), device=dev)
        tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision in ("bf16", "tf32")

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                feats = torch.nn.functional.normalize(model(pixel_values=x).image_embeds, dim=-1)
                loss = torch.nn.functional.cross_entropy(head(feats), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=fused or None)
            opt.step()

        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        try:
            ips = self.timed(step, batch, reps or (3 if self.args.smoke else 20))
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
        return dict(images_per_s=ips, batch=batch,
                    peak_device_mib=torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None)

    def step_images(self):
        """Rows of the step section's data (and the builder's at the recipes' shape)."""
        return 48 if self.args.smoke else 3840

    def step_data(self, images):
        """Image shards of `images` rows at the model's size (the step section's: several full
        batches per epoch, so that the timed windows hold no epoch end)."""
        shards = self.work / f"step-shards-{images}"
        if records.shards_built(shards):
            return shards
        rng = np.random.default_rng(1)
        folder = self.work / f"step-images-{images}"
        for i in range(images):
            c = i % 10
            img = rng.integers(0, 256, (self.size // 8, self.size // 8, 3), dtype=np.uint8)
            img = Image.fromarray(img).resize((self.size, self.size))
            (folder / f"c{c}").mkdir(parents=True, exist_ok=True)
            img.save(folder / f"c{c}" / f"{i:05d}.png", compress_level=1)
        self.cfkit("prepare", "--image-folder", folder, "--out", shards, "--image-size", self.size, "-q")
        return shards

    def ft_step(self):
        """A full FT step, cfkit (`cfkit train`: loader, forward, CE, backward, fused clip + AdamW) next
        to PyTorch eager (autocast bf16 or TF32, clip_grad_norm_(foreach), AdamW(fused)) at the same
        batch and precision, ViT-B/32 at 256 and ViT-B/16 at 128 (smoke: tiny at 8); images/s over
        the windows after the first (log_every steps each), and the MFU of each side: 3 x the forward
        FLOPs per image (`forward_flops`) x images/s over the GPU's dense peak (`PEAK_FLOPS`)."""
        cases = [("tiny", 8)] if self.args.smoke else [("vit-b-32", 256), ("vit-b-16", 128)]
        window = 2 if self.args.smoke else 5
        shards = self.step_data(self.step_images())  # 3 windows of the largest batch
        out = {}
        for preset, batch in cases:
            flops = 3 * forward_flops(PRESETS[preset])
            for precision in ("bf16", "tf32"):
                name = f"{preset} b{batch} {precision}"
                cfg = self.work / f"step-{preset}-{precision}.toml"
                cfg.write_text(
                    f'[model]\nname = "{preset}"\nhead_init_scale = 10.0\n[data]\nshards = "{shards.resolve()}"\n'
                    f'split = "train"\nshuffle_buffer = 256\n[train]\nmethod = "ft"\nepochs = 1\n'
                    f'batch_size = {batch}\nseed = 0\ndevice = "{self.args.device}"\nprecision = "{precision}"\n'
                    f'log_every = {window}\ncheckpoint_every = 100000\n[schedule]\nkind = "cosine-warmup"\n'
                    f'base_lr = 1e-5\nwarmup_pct = 0.1\n')
                run = self.work / f"step-{preset}-{precision}"
                shutil.rmtree(run, ignore_errors=True)
                _, info = self.cfkit("train", "--config", cfg, "--out", run, "-q", "--profile")
                ips = [m.images_per_s for m in self.steps(run)][1:]
                cf = float(np.median(ips)) if ips else None
                torch_side = self.eager_ft_step(batch, preset, precision, reps=3 if self.args.smoke else 10)
                peak = peak_flops(precision)
                out[name] = dict(
                    cfkit_images_per_s=cf, pytorch_images_per_s=torch_side["images_per_s"],
                    time_ratio_cfkit_over_pytorch=torch_side["images_per_s"] / cf if cf else None,
                    flops_per_image=flops, peak_flops=peak,
                    cfkit_mfu=cf * flops / peak if cf and peak else None,
                    pytorch_mfu=torch_side["images_per_s"] * flops / peak if peak else None,
                    host_reads=records.read_profile(run)["host_reads"], cfkit=info, pytorch=torch_side,
                    # `--profile`'s split of the whole run (on CUDA a phase ends where the host next
                    # waits for the device, so the device's time lands in the phase that waits).
                    profile=records.read_profile(run).as_dict())
        return out

    def markdown(self):
        r, lines = self.results, [f"# cfkit GPU check ({self.args.device}, preset {self.preset})", ""]
        lines += ["| section | ok | seconds | summary |", "|---|---|---:|---|"]
        for name, res in r.items():
            if not res["ok"] and "error" in res:
                summary = res["error"][:200]
            elif name == "doctor":
                summary = f"CUDA {res['report']['cuda_available']}, train step {res['report']['train_step_images_per_s']:.1f} img/s"
            elif name == "parity":
                summary = (f"fp32 worst max-abs {res['max_abs']:.2e} (tol 1e-4); bf16 worst max-abs / max abs(expected) "
                           f"{res['bf16_worst_relative']:.3f} (tol {res['bf16_rel_tol']})")
            elif name == "bf16":
                summary = (f"max rel diff {res['max_rel_diff']:.3f}, last-10 {res['last10_rel_diff']:.3f}"
                           if "max_rel_diff" in res else res.get("bf16", ""))
            elif name == "throughput":
                summary = (f"cfkit {res['cfkit_images_per_s']:.1f} vs PyTorch {res['pytorch_images_per_s']:.1f} img/s "
                           f"(time ratio {res['time_ratio_cfkit_over_pytorch']:.2f})")
            elif name == "pipeline":
                summary = "; ".join(f"overlap {m}: {res[m]['images_per_s']:.1f} img/s, busy "
                                    f"{res[m]['device_busy_fraction']:.0%}, peak {res[m]['peak_device_mib']:.0f} MiB"
                                    for m in ("on", "off"))
                summary += "".join(f"; {k}: {v['images']} images, warm {v['warm_images_per_s']:.1f} img/s, busy "
                                   f"{v['warm_device_busy_fraction']:.0%}"
                                   for k, v in res.items() if k.startswith("compact"))
            elif name == "methods":
                summary = "; ".join(f"{k}: {v['images_per_s']:.1f} img/s"
                                    + (f", peak {v['peak_device_mib']:.0f} MiB" if v.get("peak_device_mib") else "")
                                    for k, v in res.items() if isinstance(v, dict))
            elif name == "ft_step":
                summary = "; ".join(
                    f"{k}: cfkit {v['cfkit_images_per_s']:.1f} vs PyTorch {v['pytorch_images_per_s']:.1f} img/s"
                    + (f", MFU {v['cfkit_mfu']:.0%} vs {v['pytorch_mfu']:.0%}" if v.get("cfkit_mfu") else "")
                    for k, v in res.items() if isinstance(v, dict) and v.get("cfkit_images_per_s"))
            elif name == "ddp":
                summary = "; ".join(
                    f"{b}: " + (f"max-abs vs one process {res[b]['max_abs']:.1e} (tol {res['tol']})" if "max_abs" in res[b]
                                else res[b].get("note", "failed"))
                    for b in ("gloo", "nccl") if b in res)
            elif name == "demo":
                summary = f"cf build {res['build']['images_per_s']:.1f} img/s on {res['build']['device']}; " + "; ".join(
                    f"{k}: {v['test_id']:.2f} / {v['ood_shifted']:.2f}"
                    + (f" (CPU seed 0 {v['cpu_seed0']['test_id']:.2f} / {v['cpu_seed0']['ood_shifted']:.2f})"
                       if "cpu_seed0" in v else "") for k, v in res["runs"].items())
            else:
                summary = ""
            lines.append(f"| {name} | {'yes' if res['ok'] else '**no**'} | {res['seconds']} | {summary} |")
        return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cfkit", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (CI, CPU)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--sections", default="doctor,parity,bf16,throughput,ft_step,pipeline,methods,ddp,demo")
    ap.add_argument("--fashion-mnist", default="/usr/share/datasets/fashion-mnist",
                    help="Fashion-MNIST IDX files for the demo section (carry them to the GPU machine)")
    args = ap.parse_args()
    c = Check(args)
    c.work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    for name in args.sections.split(","):
        c.section(name, getattr(c, name))
    res = dict(device=args.device, smoke=args.smoke, preset=c.preset, torch=torch.__version__,
               cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
               seconds=round(time.time() - started, 1), sections=c.results)
    (c.out / "gpu-check.json").write_text(json.dumps(res, indent=2) + "\n")
    (c.out / "gpu-check.md").write_text(c.markdown())
    print(c.markdown())
    sys.exit(0 if all(r["ok"] for r in c.results.values()) else 1)


if __name__ == "__main__":
    main()
