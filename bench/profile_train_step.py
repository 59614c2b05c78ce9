#!/usr/bin/env python3
"""Where the train step's time goes, op by op: flowrun's step (C++) against the same
step in PyTorch-Python (bench/compare_train_step.py's), both under LibTorch's profiler.

    .venv/bin/python bench/profile_train_step.py [--model micro] [--threads 2] [--top 30]

Each side runs its timed steps, then 3 steps under the profiler (Chrome traces kept in
--out). Printed per op: self time per step (time in the op minus the ops it called), for
Python and flowrun, and the difference. Profiling adds a few us per op on both sides.
"""
import argparse
import collections
import json
import os
import pathlib
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import compare_train_step as cts  # noqa: E402

PROFILED_STEPS = 3


def self_times(trace_path):
    """Per op name: total self time (us) over the trace's CPU ops, and the number of calls."""
    events = json.loads(pathlib.Path(trace_path).read_text())
    events = events["traceEvents"] if isinstance(events, dict) else events
    by_thread = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and e.get("cat") in ("cpu_op", "user_annotation"):
            by_thread[e["tid"]].append((float(e["ts"]), float(e["dur"]), e["name"]))
    self_us = collections.Counter()
    calls = collections.Counter()
    for spans in by_thread.values():
        spans.sort(key=lambda s: (s[0], -s[1]))
        stack = []  # [end, name]
        for ts, dur, name in spans:
            while stack and stack[-1][0] <= ts:
                stack.pop()
            if stack:
                self_us[stack[-1][1]] -= dur
            self_us[name] += dur
            calls[name] += 1
            stack.append([ts + dur, name])
    return self_us, calls


def python_profile(model, threads, out):
    import torch
    torch.set_num_threads(threads)
    step, _ = cts.python_step(model)
    for _ in range(3 + cts.MODELS[model][3]):
        step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(PROFILED_STEPS):
            step()
    prof.export_chrome_trace(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="micro", choices=sorted(cts.MODELS))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--out", default=tempfile.mkdtemp(prefix="flowrun-profile-"))
    ap.add_argument("--worker", action="store_true")
    args = ap.parse_args()
    py_trace = os.path.join(args.out, "python.json")
    if args.worker:
        return python_profile(args.model, args.threads, py_trace)
    env = dict(os.environ, **cts.TUNING)
    subprocess.run([sys.executable, __file__, "--worker", "--model", args.model, "--threads", str(args.threads),
                    "--out", args.out], env=env, check=True)
    preset, _, batch, steps = cts.MODELS[args.model]
    fr_trace = os.path.join(args.out, "flowrun.json")
    subprocess.run([str(cts.BUILD / "flowrun_train_step_bench"), "--model", preset, "--batch", str(batch),
                    "--steps", str(steps), "--threads", str(args.threads), "--profile", fr_trace],
                   check=True, stdout=subprocess.DEVNULL)
    py, py_calls = self_times(py_trace)
    fr, fr_calls = self_times(fr_trace)
    names = sorted(set(py) | set(fr), key=lambda n: -max(py[n], fr[n]))
    per_step = lambda us: us / PROFILED_STEPS / 1000.0  # noqa: E731
    print(f"{args.model} ({preset}, batch {batch}, {args.threads} threads): self time per step, ms "
          f"(traces in {args.out})")
    print(f"{'op':44s} {'python':>8s} {'calls':>6s} {'flowrun':>8s} {'calls':>6s} {'diff':>8s}")
    for n in names[:args.top]:
        print(f"{n[:44]:44s} {per_step(py[n]):8.2f} {py_calls[n] // PROFILED_STEPS:6d} {per_step(fr[n]):8.2f} "
              f"{fr_calls[n] // PROFILED_STEPS:6d} {per_step(fr[n] - py[n]):+8.2f}")
    rest_py = sum(py[n] for n in names[args.top:])
    rest_fr = sum(fr[n] for n in names[args.top:])
    print(f"{'(the other ops)':44s} {per_step(rest_py):8.2f} {'':6s} {per_step(rest_fr):8.2f} {'':6s} "
          f"{per_step(rest_fr - rest_py):+8.2f}")
    print(f"{'all ops':44s} {per_step(sum(py.values())):8.2f} {sum(py_calls.values()) // PROFILED_STEPS:6d} "
          f"{per_step(sum(fr.values())):8.2f} {sum(fr_calls.values()) // PROFILED_STEPS:6d} "
          f"{per_step(sum(fr.values()) - sum(py.values())):+8.2f}")


if __name__ == "__main__":
    main()
