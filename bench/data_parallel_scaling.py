#!/usr/bin/env python3
"""Data-parallel scaling on this machine, side by side in one run:

  1. one all-reduce (sum, float32) across 2 ranks: flowrun's process group
     (build/flowrun_allreduce_bench) against torch.distributed with Gloo in Python
     (bench/allreduce_torch.py), for 4 KB, 256 KB, the quickstart's gradients (1.85 MB,
     one bucket per step) and a 25 MB bucket;
  2. training throughput of the quickstart model on the real CIFAR-10 JPEGs, one epoch of
     10,000 images, global batch 128 both ways:
       1 x 2 threads   build/flowrun pipelines/quickstart.json (batch 128, 2 compute threads)
       2 x 1 thread    build/flowrun launch --nproc 2 ... (batch 64 per rank, 1 compute thread each)
     images/s of the training epoch (the train stage's epoch time; evaluation excluded).

    .venv/bin/python bench/data_parallel_scaling.py [--rounds 2] [--reps 50]

Configurations alternate round by round (this VM's speed drifts); medians are printed."""
import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
PYTHON = ROOT / ".venv" / "bin" / "python"


def json_lines(command):
    out = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def train_images_per_s(command, run_dir):
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    records = [json.loads(line) for line in open(pathlib.Path(run_dir) / "metrics.jsonl")]
    epoch = next(r for r in records if r["scope"] == "train_epoch")
    steps = max(r["step"] for r in records if r["scope"] == "train")
    return steps * 128 / epoch["seconds"], epoch["seconds"]


def quickstart(run_dir, batch, threads):
    return ["pipelines/quickstart.json", "--run-dir", run_dir,
            "--set", "nodes.train_data.params.per_class_limit=1000", "--set", "nodes.train_data.params.epochs=1",
            "--set", "nodes.test_data.params.per_class_limit=50", "--set", "nodes.test_data.params.epochs=1",
            "--set", f"nodes.batch.params.batch_size={batch}", "--set", f"nodes.train.params.threads={threads}",
            "--set", "nodes.train.params.log_every=1", "--set", "nodes.train.params.save_every_steps=0"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--reps", type=int, default=50)
    args = parser.parse_args()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"machine: {cpu}, {len([l for l in open('/proc/cpuinfo') if l.startswith('processor')])} cores")

    allreduce = {"flowrun": {}, "torch.distributed": {}}
    for _ in range(args.rounds):
        for rec in json_lines([str(BUILD / "flowrun_allreduce_bench"), "--reps", str(args.reps)]):
            allreduce["flowrun"].setdefault(rec["bytes"], []).append(rec["ms_median"])
        for rec in json_lines([str(PYTHON), "bench/allreduce_torch.py", "--reps", str(args.reps)]):
            allreduce["torch.distributed"].setdefault(rec["bytes"], []).append(rec["ms_median"])
    print("\nall-reduce across 2 ranks (Gloo, 127.0.0.1), median ms over rounds of", args.reps)
    print(f"{'bytes':>10} {'flowrun':>10} {'torch.dist':>11} {'ratio':>7}")
    for size in sorted(allreduce["flowrun"]):
        f = statistics.median(allreduce["flowrun"][size])
        t = statistics.median(allreduce["torch.distributed"][size])
        print(f"{size:>10} {f:>10.3f} {t:>11.3f} {t / f:>6.2f}x")

    rates = {"1 x 2 threads": [], "2 x 1 thread": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            run = f"{tmp}/alone{r}"
            rates["1 x 2 threads"].append(train_images_per_s([str(BUILD / "flowrun")] + quickstart(run, 128, 2), run))
            run = f"{tmp}/ranks{r}"
            rates["2 x 1 thread"].append(
                train_images_per_s([str(BUILD / "flowrun"), "launch", "--nproc", "2"] + quickstart(run, 64, 1), run))
    print("\nquickstart training, 1 epoch of 10,000 CIFAR-10 JPEGs, global batch 128 (median of", args.rounds, "rounds)")
    base = statistics.median(x[0] for x in rates["1 x 2 threads"])
    for name, values in rates.items():
        rate = statistics.median(x[0] for x in values)
        seconds = statistics.median(x[1] for x in values)
        print(f"  {name:<14} {rate:>8.0f} images/s  epoch {seconds:6.1f} s  {rate / base:5.2f}x")


if __name__ == "__main__":
    sys.exit(main())
