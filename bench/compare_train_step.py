#!/usr/bin/env python3
"""Train-step throughput: flowrun's ViT step (C++, LibTorch) against the same model and
step in PyTorch-Python with the same wheel, side by side, plus the whole flowrun
pipeline (real CIFAR-10 JPEGs loaded while training) against its step alone.

    # timm, the Python reference model: scripts/setup.sh installs it with torch pinned beside it
    .venv/bin/python bench/compare_train_step.py [--rounds 5] [--threads 2] [--models micro,vit_s16]

For each model it runs, in alternating rounds (this VM's speed drifts; alternating keeps
each comparison fair):
  python            timm's VisionTransformer, the step as a user writes it, torch as installed
  python+tuning     the same with flowrun's settings applied (see TUNING below)
  flowrun           build/flowrun_train_step_bench: the train stage's own step
and prints medians and ratios. The step everywhere: forward, cross-entropy with label
smoothing 0.1, backward, clip_grad_norm_(1.0), AdamW (no decay on norms, biases,
position embedding, CLS token), drop path 0.1, synthetic batches.
"""
import argparse
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"

MODELS = {
    # name: (flowrun preset, timm kwargs, batch, steps)
    "micro": ("vit_cifar_micro", dict(img_size=32, patch_size=4, embed_dim=128, depth=6, num_heads=4, mlp_ratio=2.0),
              128, 15),
    "vit_s16": ("vit_small_patch16_224", dict(img_size=224, patch_size=16, embed_dim=384, depth=12, num_heads=6),
                16, 6),
}

# What flowrun does to its own process, expressed for a Python process: glibc keeps
# freed memory instead of unmapping and re-faulting it (flowrun calls mallopt at start).
TUNING = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 40),
          "MALLOC_TOP_PAD_": str(64 << 20)}


def python_step(model):
    """timm's ViT and the step as a user writes it; returns (step function, batch size)."""
    import timm
    import torch
    preset, kwargs, batch, steps = MODELS[model]
    torch.manual_seed(0)
    m = timm.models.vision_transformer.VisionTransformer(num_classes=10, drop_path_rate=0.1, **kwargs)
    decay, no_decay = [], []
    for name, p in m.named_parameters():
        (no_decay if p.ndim <= 1 or name in ("pos_embed", "cls_token") else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3)
    x = torch.randn(batch, 3, kwargs["img_size"], kwargs["img_size"])
    y = torch.randint(0, 10, (batch,))

    def step():
        loss = torch.nn.functional.cross_entropy(m(x), y, label_smoothing=0.1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
    return step, batch


def python_worker(model, threads, tuned):
    import torch
    if tuned or threads:
        torch.set_num_threads(threads)
    step, batch = python_step(model)
    steps = MODELS[model][3]
    times = []
    for i in range(3 + steps):
        t = time.perf_counter()
        step()
        if i >= 3:
            times.append(time.perf_counter() - t)
    print(json.dumps({"images_per_s": batch / statistics.median(times), "threads": torch.get_num_threads()}))


def run_json(cmd, env=None):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(variant, model, threads):
    preset, kwargs, batch, steps = MODELS[model]
    if variant == "flowrun":
        cmd = [str(BUILD / "flowrun_train_step_bench"), "--model", preset, "--batch", str(batch), "--steps", str(steps)]
        if threads:
            cmd += ["--threads", str(threads)]
        return run_json(cmd)["images_per_s"]
    env = dict(os.environ)
    tuned = variant == "python+tuning"
    if tuned:
        env.update(TUNING)
    cmd = [sys.executable, __file__, "--worker", model, "--threads", str(threads if tuned else 0)]
    if tuned:
        cmd.append("--tuned")
    return run_json(cmd, env)["images_per_s"]


def pipeline_rate(threads):
    """The quickstart pipeline on 5,000 real training images: the train stage's own
    images/s per log window (wall clock, so any wait for data counts)."""
    cmd = [str(BUILD / "flowrun"), str(ROOT / "pipelines" / "quickstart.json"),
           "--set", "nodes.train_data.params.per_class_limit=500", "--set", "nodes.train_data.params.epochs=1",
           "--set", "nodes.test_data.params.per_class_limit=1", "--set", "nodes.test_data.params.epochs=1",
           "--set", "nodes.train.params.log_every=5"]
    if threads:
        cmd += ["--set", f"threads={threads}"]
    log = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    rates = [float(r) for r in re.findall(r"(\d+) img/s", log)]
    return statistics.median(rates[1:]) if len(rates) > 1 else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="0 = each side's default")
    ap.add_argument("--models", default="micro,vit_s16")
    ap.add_argument("--no-pipeline", action="store_true")
    ap.add_argument("--worker")
    ap.add_argument("--tuned", action="store_true")
    args = ap.parse_args()
    if args.worker:
        return python_worker(args.worker, args.threads, args.tuned)
    threads = args.threads or os.cpu_count()
    variants = ["python", "python+tuning", "flowrun"]
    print(f"train step, synthetic batches, {args.rounds} alternating rounds; tuned threads = {threads}")
    for model in args.models.split(","):
        results = {v: [] for v in variants}
        for r in range(args.rounds):
            for v in variants[r % 3:] + variants[:r % 3]:
                results[v].append(measure(v, model, threads if v != "python" else 0))
        med = {v: statistics.median(x) for v, x in results.items()}
        preset, _, batch, _ = MODELS[model]
        print(f"\n{model} ({preset}, batch {batch})")
        for v in variants:
            runs = ", ".join(f"{x:.1f}" for x in results[v])
            print(f"  {v:14s} {med[v]:8.1f} img/s   (rounds: {runs})")
        print(f"  flowrun / python          {med['flowrun'] / med['python']:.3f}")
        print(f"  flowrun / python+tuning   {med['flowrun'] / med['python+tuning']:.3f}")
        if model == "micro" and not args.no_pipeline:
            step, pipe = [], []
            for _ in range(args.rounds):
                step.append(measure("flowrun", model, threads))
                pipe.append(pipeline_rate(threads))
            # Paired per round (step alone, then the pipeline right after): the VM's drift
            # over minutes is larger than the difference being measured.
            ratios = [p / s for p, s in zip(pipe, step)]
            print(f"  flowrun pipeline (quickstart.json, real JPEGs, loading overlapped): {statistics.median(pipe):.1f} img/s,"
                  f" step alone {statistics.median(step):.1f}; pipeline / step per round: "
                  + ", ".join(f"{r:.3f}" for r in ratios) + f" (median {statistics.median(ratios):.3f})")


if __name__ == "__main__":
    main()
