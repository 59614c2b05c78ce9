#!/usr/bin/env python3
"""Reads a flowrun checkpoint with h5py (what a user would do) and checks that the
documented names are there; with --same-weights OTHER.h5, that both hold bit-identical
model weights (the resume test). Exit 0 when every check passes.

    .venv/bin/python tools/check_checkpoint.py runs/x/checkpoints/ckpt-step00000012.h5
    .venv/bin/python tools/check_checkpoint.py A.h5 --same-weights B.h5
"""
import argparse
import json
import sys

import h5py
import numpy as np


def fail(message):
    print("check_checkpoint: FAIL:", message)
    sys.exit(1)


def check_layout(f, path):
    attrs = f.attrs
    for name in ("format", "format_version", "reason", "node", "step", "epoch", "created", "model_config", "classes",
                 "pipeline"):
        if name not in attrs:
            fail(f"{path}: root attribute '{name}' missing")
    if attrs["format"] != "flowrun.checkpoint":
        fail(f"{path}: format is {attrs['format']!r}")
    pipeline = json.loads(attrs["pipeline"])
    config = json.loads(attrs["model_config"])
    classes = json.loads(attrs["classes"])
    for group in ("model", "optimizer", "rng", "state", "data"):
        if group not in f:
            fail(f"{path}: group '{group}' missing")
    model = f["model"]
    for name in ("cls_token", "pos_embed", "patch_embed.proj.weight", "head.weight", "blocks.0.attn.qkv.weight"):
        if name not in model:
            fail(f"{path}: model/{name} missing")
    if model["pos_embed"].dtype != np.float32:
        fail(f"{path}: model/pos_embed is {model['pos_embed'].dtype}, expected float32")
    if model["head.weight"].shape != (config["num_classes"], config["width"]):
        fail(f"{path}: head.weight shape {model['head.weight'].shape} does not match the model config")
    params = sum(int(np.prod(d.shape)) for d in model.values())
    adam = f["optimizer"]["head.weight"] if "head.weight" in f["optimizer"] else None
    if adam is not None and ("exp_avg" not in adam or "exp_avg_sq" not in adam or "step" not in adam):
        fail(f"{path}: optimizer/head.weight lacks exp_avg / exp_avg_sq / step")
    if f["rng"]["torch_cpu"].dtype != np.uint8:
        fail(f"{path}: rng/torch_cpu is not uint8")
    if "trainer" not in f["state"] or "step" not in f["state"]["trainer"]:
        fail(f"{path}: state/trainer/step missing")
    if int(f["state"]["trainer"]["step"][()]) != int(attrs["step"]):
        fail(f"{path}: state/trainer/step != the step attribute")
    for source, position in f["data"].items():
        if position.shape != (2,):
            fail(f"{path}: data/{source} is not [epoch, position]")
    scopes = list(f["metrics"].keys()) if "metrics" in f else []
    print(f"{path}: ok: pipeline '{pipeline.get('name')}', step {attrs['step']}, epoch {attrs['epoch']} "
          f"({attrs['reason']}), {len(model)} model tensors ({params} values), {len(classes)} classes, "
          f"sources {sorted(f['data'].keys())}, metrics {scopes}")


def same_weights(a, b, path_a, path_b):
    ma, mb = a["model"], b["model"]
    if sorted(ma.keys()) != sorted(mb.keys()):
        fail("the two checkpoints hold different model tensors")
    differ = [name for name in ma.keys() if not np.array_equal(ma[name][()], mb[name][()])]
    if differ:
        worst = max(float(np.abs(ma[n][()] - mb[n][()]).max()) for n in differ)
        fail(f"{len(differ)} of {len(ma)} tensors differ between {path_a} and {path_b} (max abs diff {worst:g}), "
             f"e.g. {differ[:3]}")
    print(f"weights bit-identical: {path_a} == {path_b} ({len(ma)} tensors)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--same-weights", metavar="OTHER")
    args = parser.parse_args()
    with h5py.File(args.checkpoint, "r") as f:
        check_layout(f, args.checkpoint)
        if args.same_weights:
            with h5py.File(args.same_weights, "r") as g:
                check_layout(g, args.same_weights)
                same_weights(f, g, args.checkpoint, args.same_weights)


if __name__ == "__main__":
    main()
