#!/usr/bin/env python3
"""The device check's figures, from what its phases left in WORK: every figure with its
unit and the command that measured it, as figures.json, and a table for summary.txt.

    figures.py WORK FIGURES.json   (prints the table)

Reads: WORK/vit/run.json (flowrun's run summary), WORK/vit/meta.json (batch size,
command) and WORK/logs/flowrun_vit.log (the train stage's periodic img/s lines),
WORK/gpu_SIDE.csv (nvidia-smi samples: utilization %, memory MiB), WORK/gpu_name.txt, WORK/python_*.json (bench/device/vit_b16_reference.py's last line), and the
benches' JSON lines in WORK/raw/NAME.json with their commands in WORK/raw/NAME.cmd.
A figure whose input is missing is left out (the summary says which phase failed)."""
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


def columns(path):
    """nvidia-smi's CSV samples as (utilization, memory) lists."""
    util, mem = [], []
    try:
        with open(path) as f:
            for line in f:
                parts = [p.strip() for p in line.split(",")]
                if len(parts) >= 2 and all(p.replace(".", "", 1).isdigit() for p in parts[:2]):
                    util.append(float(parts[0]))
                    mem.append(float(parts[1]))
    except OSError:
        pass
    return util, mem


def logged_rates(path):
    """The train stage's periodic 'N img/s' figures, the first (start-up) left out."""
    try:
        with open(path) as f:
            rates = [float(m.group(1)) for m in re.finditer(r" (\d+(?:\.\d+)?) img/s", f.read())]
    except OSError:
        return []
    return rates[1:]


def main():
    work, out = sys.argv[1], sys.argv[2]
    figures = []

    def add(name, value, unit, command):
        if value is not None:
            figures.append({"name": name, "value": round(value, 4), "unit": unit, "command": command})

    run, meta = load(os.path.join(work, "vit", "run.json")), load(os.path.join(work, "vit", "meta.json"))
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
        rates = logged_rates(os.path.join(work, "logs", "flowrun_vit.log"))
        if rates:
            steady = statistics.median(rates)
            add("flowrun images/s after warm-up (median of the train stage's logged windows, the first left out)",
                steady, "images/s", cmd)
            if meta.get("vit_b16"):
                add(f"model FLOPs utilisation (images/s after warm-up x 3 x 35.2 GFLOP / {bf16_peak(gpu) / 1e12:.0f} "
                    f"TFLOP/s, {gpu or 'GPU unknown'})", 100 * steady * 3 * FORWARD_FLOP / bf16_peak(gpu), "%", cmd)
        if train and train.get("call_p50_s"):
            add("flowrun host time per step (batch / median train call; the GPU's pace once its queue is full)",
                batch / train["call_p50_s"], "images/s", cmd)
        stall = (run.get("data_stall") or {}).get("train")
        if stall:
            add("train stage's data stall (share of its active time waiting for batches)", 100 * stall["share"], "%", cmd)
    for side in ("flowrun", "python_eager", "python_compiled"):
        util, mem = columns(os.path.join(work, f"gpu_{side}.csv"))
        if len(util) > 10:
            util = util[len(util) // 5:]  # past start-up
        if util:
            add(f"GPU busy share during the {side} run (nvidia-smi every 200 ms, after the first fifth)",
                statistics.mean(util), "%", f"nvidia-smi --query-gpu=utilization.gpu -lms 200 ({side})")
        if mem:
            add(f"peak GPU memory during the {side} run (nvidia-smi)", max(mem), "MiB",
                f"nvidia-smi --query-gpu=memory.used -lms 200 ({side})")
    for side in ("eager", "compiled"):
        ref = load(os.path.join(work, f"python_{side}.json"))
        if ref:
            add(f"PyTorch-Python ({side}) images/s", ref["images_per_s"], "images/s", ref.get("command", ""))
            add(f"PyTorch-Python ({side}) data wait share", 100 * ref["data_wait_share"], "%", ref.get("command", ""))
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
        label = d.get("tool") or "flowrun " + str(d.get("plugin") or d.get("model") or "")
        where = ", ".join(str(x) for x in (f"{d['size']} px" if "size" in d else None,
                                            f"batch {d['batch']}" if "batch" in d else None,
                                            d.get("dtype"), d.get("precision"), d.get("device")) if x)
        if "ms_per_batch" in d:
            add(f"{label} ({where})", d["ms_per_batch"], "ms/batch", cmd)
        if "images_per_s" in d:
            add(f"{label} step alone ({where})", d["images_per_s"], "images/s", cmd)
    by_name = {f["name"]: f["value"] for f in figures}
    flowrun = next((v for k, v in by_name.items() if k.startswith("flowrun images/s after warm-up")), None)
    for side in ("eager", "compiled"):
        python = by_name.get(f"PyTorch-Python ({side}) images/s")
        if flowrun and python:
            add(f"flowrun / PyTorch-Python ({side}), both after warm-up", flowrun / python, "x",
                "the two figures above, same model and batch")
    with open(out, "w") as f:
        json.dump(figures, f, indent=1)
    for fig in figures:
        print(f"  {fig['value']:>12} {fig['unit']:<9} {fig['name']}")


if __name__ == "__main__":
    main()
