#!/usr/bin/env python3
"""Batch augmentation on the CPU, side by side with what it replaces and with timm.

Runs, in one go, on this machine:
  1. the ViT-B/16 input path (CIFAR-10 JPEG -> 224 x 224 float batch of 128): the per-sample CPU
     chain (pipelines/cifar10_loader_224.json: random_resized_crop + flip per sample, normalized
     while batching) against 32-px uint8 batches + batch stages on the CPU
     (pipelines/cifar10_loader_224_batch.json: batch_random_resized_crop, batch_normalize);
     images/s and peak memory of each, each run in its own process, alternating;
  2. mixup_cutmix per batch (flowrun_mix_bench) against timm's Mixup (bench/mix_timm.py), same
     recipe and shape, at 32 px and 224 px, alternating;
  3. that cost against the train step on the same batch: vit_cifar_micro at 32 px (batch 128)
     and ViT-B/16 at 224 px (batch 16; a CPU step at batch 128 takes minutes);
and prints medians and ratios.

    .venv/bin/python bench/batch_augment_bench.py [--threads 2] [--rounds 3] [--limit 300]
"""
import argparse
import json
import pathlib
import re
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
PY = sys.executable


def run(cmd):
    out = subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return out.strip().splitlines()[-1]


def loader(pipeline, threads, limit):
    line = run([BUILD / "flowrun_loader_bench", "--pipeline", ROOT / "pipelines" / pipeline, "--threads", threads,
                "--limit", limit, "--repeat", 1])
    fields = dict(re.findall(r"(\w+)=([\d.]+)", line))
    return float(fields["images_per_s"]), float(fields["peak_rss_mb"])


def mix_flowrun(batch, size, threads, batches):
    return json.loads(run([BUILD / "flowrun_mix_bench", "--batch", batch, "--size", size, "--threads", threads,
                           "--batches", batches]))["ms_per_batch"]


def mix_timm(batch, size, threads, batches):
    return json.loads(run([PY, ROOT / "bench" / "mix_timm.py", "--batch", batch, "--size", size, "--threads", threads,
                           "--batches", batches]))["ms_per_batch"]


def step_ms(model, batch, threads, steps, warmup):
    r = json.loads(run([BUILD / "flowrun_train_step_bench", "--model", model, "--batch", batch, "--threads", threads,
                        "--steps", steps, "--warmup", warmup]))
    return statistics.median(r["step_ms"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=300, help="images per class for the input path (300: 3,000 images)")
    a = ap.parse_args()
    med = statistics.median
    cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"# machine: {cpu_model}, {a.threads} threads, {a.rounds} rounds (medians)")

    cpu, twins = [], []
    for _ in range(a.rounds):
        cpu.append(loader("cifar10_loader_224.json", a.threads, a.limit))
        twins.append(loader("cifar10_loader_224_batch.json", a.threads, a.limit))
    c_rate, c_mem = med(r for r, _ in cpu), med(m for _, m in cpu)
    t_rate, t_mem = med(r for r, _ in twins), med(m for _, m in twins)
    print("\n## 224-px input path, JPEG -> float batch of 128")
    print(f"per-sample CPU chain (random_resized_crop)  {c_rate:8.0f} images/s  peak {c_mem:6.0f} MB")
    print(f"uint8 32 px + batch stages on the CPU       {t_rate:8.0f} images/s  peak {t_mem:6.0f} MB")
    print(f"ratio batch/per-sample: {t_rate / c_rate:.2f}x images/s, {t_mem / c_mem:.2f}x peak memory")

    print("\n## mixup_cutmix per batch (mode batch, alpha 0.8 / 1.0, switch 0.5), ms")
    mix = {}
    for batch, size in [(128, 32), (16, 224), (128, 224)]:
        f, t = [], []
        for _ in range(a.rounds):
            f.append(mix_flowrun(batch, size, a.threads, 200 if size == 32 else 40))
            t.append(mix_timm(batch, size, a.threads, 200 if size == 32 else 40))
        mix[(batch, size)] = med(f)
        print(f"batch {batch:3d} x {size:3d} px: flowrun {med(f):8.3f}  timm {med(t):8.3f}  flowrun/timm {med(f) / med(t):.2f}")

    print("\n## mixup_cutmix against the train step on the same batch")
    micro = step_ms("vit_cifar_micro", 128, a.threads, 10, 3)
    base = step_ms("vit_base_patch16_224", 16, a.threads, 2, 1)
    print(f"vit_cifar_micro, 128 x 32 px: step {micro:9.1f} ms, mix {mix[(128, 32)]:.3f} ms = {100 * mix[(128, 32)] / micro:.2f}% of the step")
    print(f"ViT-B/16, 16 x 224 px:        step {base:9.1f} ms, mix {mix[(16, 224)]:.3f} ms = {100 * mix[(16, 224)] / base:.3f}% of the step")


if __name__ == "__main__":
    main()
