#!/usr/bin/env python3
"""What the always-on per-node figures cost: the CIFAR-10 loader (pipelines/cifar10_loader.json, the
50,000 training JPEGs, build/flowrun_loader_bench) with them on and with FLOWRUN_NO_NODE_STATS=1
(busy time only, as before the profiler), alternating in separate processes, and the median of
the per-round ratios. The loader is the place they could show: a call per item per stage, about
9 us of work per image here; the train stage's calls are hundreds of milliseconds.

    .venv/bin/python bench/profiling_overhead.py [--rounds 7] [--threads 2]
"""
import argparse
import os
import pathlib
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def rate(args, stats_on):
    env = dict(os.environ)
    env.pop("FLOWRUN_NO_NODE_STATS", None)
    if not stats_on:
        env["FLOWRUN_NO_NODE_STATS"] = "1"
    out = subprocess.run([str(ROOT / "build/flowrun_loader_bench"), "--tar", args.tar, "--threads", str(args.threads),
                          "--repeat", "3"], check=True, capture_output=True, text=True, env=env).stdout
    fields = dict(f.split("=") for f in out.strip().splitlines()[-1].split()[1:])
    return float(fields["images_per_s"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tar", default=str(ROOT.parent / "shared/data/cifar10-jpeg.tar"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    on, off, ratios = [], [], []
    for r in range(args.rounds):
        # Alternate which goes first: this VM's speed drifts within minutes.
        pair = [(True, on), (False, off)] if r % 2 == 0 else [(False, off), (True, on)]
        got = {}
        for stats_on, into in pair:
            got[stats_on] = rate(args, stats_on)
            into.append(got[stats_on])
        ratios.append(got[True] / got[False])
        print(f"round {r + 1}: with figures {got[True]:,.0f} img/s, without {got[False]:,.0f} img/s, "
              f"ratio {ratios[-1]:.3f}", flush=True)
    print(f"median: with {statistics.median(on):,.0f} img/s, without {statistics.median(off):,.0f} img/s; "
          f"median per-round ratio {statistics.median(ratios):.3f} "
          f"(overhead {100 * (1 - statistics.median(ratios)):.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
