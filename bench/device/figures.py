#!/usr/bin/env python3
"""The device check's figures, from what its phases left in WORK: every figure with its
unit and the command that measured it, as figures.json, and a table for summary.txt.

    figures.py WORK FIGURES.json   (prints the table)

Reads: WORK/vit/run.json (flowrun's run summary), WORK/vit/meta.json (batch size,
command) and WORK/vit/flowrun.log (the run's log file, whose lines carry the date: the
train stage's periodic img/s lines),
WORK/gpu_SIDE.csv (nvidia-smi samples: time, utilization %, memory MiB),
WORK/gpu_name.txt, WORK/python_*.json (bench/device/vit_b16_reference.py's last line),
and the benches' JSON lines in WORK/raw/NAME.json with their commands in
WORK/raw/NAME.cmd (a line with name, value and unit is a figure as it stands). A figure
whose input is missing is left out (the summary says which phase failed).

Like for like: each side's images/s after warm-up is the median of its 20-step windows
between log steps (the first left out), and its GPU busy share is the mean of the
nvidia-smi samples taken between its first and last timed log step."""
import datetime
import glob
import re
import json
import os
import statistics
import sys

# Model FLOPs utilisation: forward 35.2 GFLOP per 224-px image for ViT-B/16 (timm's
# count), training (forward + backward) about 3x that, over the card's dense bf16 peak:
# H100 SXM and H200 989 TFLOP/s, H100 PCIe 756. MFU = images/s * 3 * 35.2e9 / peak.
FORWARD_FLOP = 35.2e9


def bf16_peak(gpu_name):
    return 756e12 if "PCIe" in gpu_name else 989e12


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def local_time(text, form):
    """A local wall-clock reading (nvidia-smi's, flowrun's log) as Unix seconds."""
    try:
        return datetime.datetime.strptime(text.strip(), form).timestamp()
    except ValueError:
        return None


def samples(path):
    """nvidia-smi's CSV samples as (time, utilization %, memory MiB) triples."""
    rows = []
    try:
        with open(path) as f:
            for line in f:
                parts = [p.strip() for p in line.split(",")]
                if len(parts) >= 3 and all(p.replace(".", "", 1).isdigit() for p in parts[1:3]):
                    rows.append((local_time(parts[0], "%Y/%m/%d %H:%M:%S.%f"), float(parts[1]), float(parts[2])))
    except OSError:
        pass
    return rows


def logged_windows(path):
    """The train stage's periodic 'N img/s' lines as (rates, (start, end)): the first
    window (start-up) left out, the span from its end to the last line's time."""
    try:
        with open(path) as f:
            lines = [(local_time(m.group(1), "%Y-%m-%d %H:%M:%S.%f"), float(m.group(2)))
                     for m in re.finditer(r"^(\S+ \S+) .* (\d+(?:\.\d+)?) img/s", f.read(), re.M)]
    except OSError:
        return [], None
    if len(lines) < 2:
        return [], None
    return [rate for _, rate in lines[1:]], (lines[0][0], lines[-1][0])


def main():
    work, out = sys.argv[1], sys.argv[2]
    figures = []

    def add(name, value, unit, command):
        if value is not None:
            figures.append({"name": name, "value": round(value, 4), "unit": unit, "command": command})

    run, meta = load(os.path.join(work, "vit", "run.json")), load(os.path.join(work, "vit", "meta.json"))
    peak = load(os.path.join(work, "raw", "peak.json"))
    timed = {}  # side: its timed span (Unix seconds), for the busy share
    steady = {}  # side: images/s after warm-up, for MFU
    try:
        with open(os.path.join(work, "gpu_name.txt")) as f:
            gpu = f.read().strip()
    except OSError:
        gpu = ""
    if run and meta:
        train = next((n for n in run.get("nodes", []) if n.get("plugin") == "train"), None)
        cmd, batch = meta["command"], meta["batch"]
        if train and train.get("active_s"):
            add("flowrun images/s over the whole run (train stage's items x batch / its active time: start-up and "
                "evaluations included)", train["items"] * batch / train["active_s"], "images/s", cmd)
        rates, span = logged_windows(os.path.join(work, "vit", "flowrun.log"))
        if rates:
            steady["flowrun"] = statistics.median(rates)
            if None not in span:
                timed["flowrun"] = span
            add("flowrun images/s after warm-up (median of the train stage's logged windows, the first left out)",
                steady["flowrun"], "images/s", cmd)
        if train and train.get("call_p50_s"):
            add("flowrun host time per step (batch / median train call; the GPU's pace once its queue is full)",
                batch / train["call_p50_s"], "images/s", cmd)
        stall = (run.get("data_stall") or {}).get("train")
        if stall:
            add("train stage's data stall (share of its active time waiting for batches)", 100 * stall["share"], "%", cmd)
    for side in ("eager", "compiled"):
        ref = load(os.path.join(work, f"python_{side}.json"))
        if ref:
            add(f"PyTorch-Python ({side}) images/s after warm-up (median of its 20-step windows, the first left out)",
                ref["images_per_s"], "images/s", ref.get("command", ""))
            add(f"PyTorch-Python ({side}) images/s, mean over its timed steps", ref.get("images_per_s_mean"),
                "images/s", ref.get("command", ""))
            add(f"PyTorch-Python ({side}) data wait share", 100 * ref["data_wait_share"], "%", ref.get("command", ""))
            steady[f"python_{side}"] = ref["images_per_s"]
            if None not in (ref.get("timed_unix") or [None]):
                timed[f"python_{side}"] = tuple(ref["timed_unix"])
    for side in ("flowrun", "python_eager", "python_compiled"):
        rows = samples(os.path.join(work, f"gpu_{side}.csv"))
        span = timed.get(side)
        during = [u for t, u, _ in rows if span and t is not None and span[0] <= t <= span[1]]
        if during:
            add(f"GPU busy share during the {side} run's timed windows (nvidia-smi every 200 ms, {len(during)} samples)",
                statistics.mean(during), "%", f"nvidia-smi --query-gpu=timestamp,utilization.gpu -lms 200 ({side})")
        if rows:
            add(f"peak GPU memory during the {side} run (nvidia-smi)", max(m for _, _, m in rows), "MiB",
                f"nvidia-smi --query-gpu=memory.used -lms 200 ({side})")
    # Model FLOPs utilisation, against the datasheet's dense bf16 peak and against the
    # matrix rate measured on this machine in the preflight.
    if meta and meta.get("vit_b16"):
        for side, rate in steady.items():
            flops = rate * 3 * FORWARD_FLOP
            add(f"{side} model FLOPs utilisation (images/s after warm-up x 3 x 35.2 GFLOP / {bf16_peak(gpu) / 1e12:.0f} "
                f"TFLOP/s datasheet dense bf16, {gpu or 'GPU unknown'})", 100 * flops / bf16_peak(gpu), "%",
                "from the images/s figure above")
            if peak and peak.get("value"):
                add(f"{side} model FLOPs utilisation against the measured bf16 matrix rate ({peak['value']} TFLOP/s)",
                    100 * flops / (peak["value"] * 1e12), "%", "from the images/s figure above")
    # The benches' own JSON lines (flowrun_mix_bench, mix_timm.py, flowrun_train_step_bench),
    # each saved as WORK/raw/NAME.json with the command in WORK/raw/NAME.cmd.
    for path in sorted(glob.glob(os.path.join(work, "raw", "*.json"))):
        d = load(path)
        if not isinstance(d, dict):
            continue
        try:
            with open(path[:-5] + ".cmd") as f:
                cmd = f.read().strip()
        except OSError:
            cmd = ""
        if {"name", "value", "unit"} <= set(d):  # a figure as it stands (the preflight's, the tests', the probe's)
            add(d["name"], d["value"], d["unit"], cmd)
            continue
        label = d.get("tool") or "flowrun " + str(d.get("plugin") or d.get("model") or "")
        where = ", ".join(str(x) for x in (f"{d['size']} px" if "size" in d else None,
                                            f"batch {d['batch']}" if "batch" in d else None,
                                            d.get("dtype"), d.get("precision"), d.get("device")) if x)
        if "ms_per_batch" in d:
            add(f"{label} ({where})", d["ms_per_batch"], "ms/batch", cmd)
        if "images_per_s" in d:
            add(f"{label} step alone ({where})", d["images_per_s"], "images/s", cmd)
    for side in ("eager", "compiled"):
        if "flowrun" in steady and f"python_{side}" in steady:
            add(f"flowrun / PyTorch-Python ({side}), both the median of 20-step windows after warm-up",
                steady["flowrun"] / steady[f"python_{side}"], "x", "the two images/s figures above, same model and batch")
    with open(out, "w") as f:
        json.dump(figures, f, indent=1)
    for fig in figures:
        print(f"  {fig['value']:>12} {fig['unit']:<9} {fig['name']}")


if __name__ == "__main__":
    main()
