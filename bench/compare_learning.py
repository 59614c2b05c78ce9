#!/usr/bin/env python3
"""flowrun's from-scratch training against the PyTorch reference with the same recipe, side by side.

Runs `build/flowrun pipelines/quickstart.json` (plus any --set), reads the recipe back from the run
folder's pipeline.json (model shape, init, optimizer, schedule, smoothing, clipping, batch, epochs,
padding mode), runs bench/reference_vit_cifar.py with exactly that recipe, and prints the test
accuracy after every epoch for both, their difference, and the wall times. Both read the same
CIFAR-10 JPEGs and run on the same threads, one after the other.

    .venv/bin/python bench/compare_learning.py [--set PATH=VALUE ...] [--skip-flowrun RUN_DIR] [--seed 0]

--skip-flowrun RUN_DIR reuses a finished flowrun run instead of training again.
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def node(pipeline, node_id):
    return next(n for n in pipeline["nodes"] if n["id"] == node_id)


def recipe_args(pipeline):
    """reference_vit_cifar.py arguments for the recipe of a resolved quickstart-shaped pipeline."""
    train = node(pipeline, "train")["params"]
    data = node(pipeline, "train_data")["params"]
    crop = node(pipeline, "crop")["params"]
    batch = node(pipeline, "batch")["params"]
    for name, plugin in (("augment", "identity"), ("mix", "identity")):
        found = next((n for n in pipeline["nodes"] if n["id"] == name), None)
        if found and found["plugin"] != plugin:
            sys.exit(f"compare_learning: node '{name}' is {found['plugin']}; the reference has crop + flip only")
    init = train.get("init", "auto")
    if init == "auto":
        init = "timm" if train.get("pretrained") else "pytorch"
    # The preset's shape where the pipeline leaves a field at 0 (vit_cifar_micro: 128/6/4/2).
    preset = {"width": 128, "depth": 6, "heads": 4, "mlp_ratio": 2.0}
    if train.get("model", "vit_cifar_micro") != "vit_cifar_micro":
        sys.exit("compare_learning: only vit_cifar_micro-based shapes are mirrored")
    shape = {k: (train.get(k) or v) for k, v in preset.items()}
    if train.get("drop_path", 0) or train.get("dropout", 0):
        sys.exit("compare_learning: the reference runs without dropout and drop path")
    return ["--epochs", str(data.get("epochs", 1)), "--batch", str(batch.get("batch_size", 128)),
            "--width", str(shape["width"]), "--depth", str(shape["depth"]), "--heads", str(shape["heads"]),
            "--mlp-ratio", str(shape["mlp_ratio"]), "--lr", str(train.get("lr", 1e-3)),
            "--weight-decay", str(train.get("weight_decay", 0.05)),
            "--warmup-fraction", str(train.get("warmup_fraction", 0.05)),
            "--label-smoothing", str(train.get("label_smoothing", 0.1)), "--clip", str(train.get("clip_grad_norm", 0)),
            "--init", init, "--padding-mode", crop.get("padding_mode", "constant"),
            "--per-class-limit", str(data.get("per_class_limit", 0)), "--seed", str(pipeline.get("seed", 0))]


def flowrun_epochs(run_dir):
    evals = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["scope"] == "eval":
            evals.append(record)
    return evals


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pipeline", default=str(ROOT / "pipelines/quickstart.json"))
    ap.add_argument("--set", action="append", default=[], help="PATH=VALUE for flowrun (and so for the reference)")
    ap.add_argument("--skip-flowrun", help="a finished flowrun run folder to read instead of training")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    if args.skip_flowrun:
        run_dir = pathlib.Path(args.skip_flowrun)
        flowrun_wall = json.loads((run_dir / "run.json").read_text())["seconds"]
    else:
        run_dir = pathlib.Path(tempfile.mkdtemp(prefix="compare_learning_", dir=ROOT / "runs" if (ROOT / "runs").is_dir() else None))
        command = [str(ROOT / "build/flowrun"), args.pipeline, "--run-dir", str(run_dir)]
        for s in args.set:
            command += ["--set", s]
        print("flowrun:", " ".join(command), flush=True)
        t0 = time.perf_counter()
        subprocess.run(command, check=True, cwd=ROOT)
        flowrun_wall = time.perf_counter() - t0
    pipeline = json.loads((run_dir / "pipeline.json").read_text())
    reference_args = recipe_args(pipeline) + ["--threads", str(args.threads)]
    out = run_dir / "reference.json"
    command = [sys.executable, str(ROOT / "bench/reference_vit_cifar.py"), *reference_args, "--json", str(out)]
    print("reference:", " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)
    reference = json.loads(out.read_text())

    ours = flowrun_epochs(run_dir)
    print(f"\nrecipe: {' '.join(reference_args)}")
    print(f"{'epoch':>5} {'step':>6} {'flowrun':>9} {'reference':>10} {'diff':>7}")
    for mine, theirs in zip(ours, reference["epochs"]):
        print(f"{mine['epoch']:>5} {mine['step']:>6} {100 * mine['accuracy']:>8.2f}% {100 * theirs['accuracy']:>9.2f}% "
              f"{100 * (mine['accuracy'] - theirs['accuracy']):>+6.2f}")
    print(f"wall: flowrun {flowrun_wall:.0f} s (whole run: loading, evaluations, checkpoints), "
          f"reference {reference['wall_s']:.0f} s (decoding into memory included)")
    print(f"run folder: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
