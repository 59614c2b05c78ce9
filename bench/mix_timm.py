#!/usr/bin/env python3
"""timm's Mixup (timm 1.0.31) per batch, for bench/batch_augment_bench.py: the same
recipe and shape as flowrun_mix_bench (mixup_alpha 0.8, cutmix_alpha 1.0, switch 0.5,
mode batch, label smoothing 0.1, 10 classes), on a fresh copy of the batch each call
(timm mixes in place; the copy is made outside the timed region, as a loader would
hand over a new batch). Prints one JSON line.

    .venv/bin/python bench/mix_timm.py --batch 128 --size 32 [--batches 200] [--threads 2]
"""
import argparse
import json
import statistics
import time

import timm
import torch
from timm.data import Mixup


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    mix = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5, mode="batch", label_smoothing=0.1, num_classes=10)
    base = torch.randn(a.batch, 3, a.size, a.size, device=a.device)
    labels = torch.randint(0, 10, (a.batch,), device=a.device)
    ms = []
    for i in range(5 + a.batches):
        x = base.clone()
        if a.device != "cpu":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out, target = mix(x, labels)
        if a.device != "cpu":
            out.sum().item()
        if i >= 5:
            ms.append((time.perf_counter() - t0) * 1e3)
    ms.sort()
    print(json.dumps({"tool": f"timm {timm.__version__} Mixup", "batch": a.batch, "size": a.size, "threads": a.threads,
                      "device": a.device, "batches": a.batches, "ms_per_batch": round(statistics.median(ms), 4),
                      "p90_ms": round(ms[len(ms) * 9 // 10], 4)}))


if __name__ == "__main__":
    main()
