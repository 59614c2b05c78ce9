#!/usr/bin/env python3
"""Checks `flowrun predict`'s probabilities against transformers on the same tensors.

check_predictions.py EXPORT_FOLDER PREDICTIONS.jsonl --mean M M M --std S S S

Loads the export with transformers' ViTForImageClassification, reads each image the
predictions name with Pillow (images at the model's size: no resampling, so both sides
see the same pixels), normalizes it with MEAN/STD as flowrun's chain does, and compares
the top-k classes and their softmax probabilities. Exit 0 when every class matches and
every probability is within 1e-4 (flowrun prints them to 6 decimals). Used by the test
suite (tests/predict/test_predict.cpp)."""
import argparse
import json
import sys

import numpy as np
import torch
from PIL import Image
from transformers import ViTForImageClassification

TOLERANCE = 1e-4


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("export")
    parser.add_argument("predictions")
    parser.add_argument("--mean", type=float, nargs=3, required=True)
    parser.add_argument("--std", type=float, nargs=3, required=True)
    args = parser.parse_args()
    model = ViTForImageClassification.from_pretrained(args.export).eval()
    size = model.config.image_size
    mean = torch.tensor(args.mean).view(3, 1, 1)
    std = torch.tensor(args.std).view(3, 1, 1)
    records = [json.loads(line) for line in open(args.predictions) if line.strip()]
    worst, mismatches = 0.0, 0
    for record in records:
        image = Image.open(record["path"]).convert("RGB")
        if image.size != (size, size):
            sys.exit(f"{record['path']} is {image.size}, not {size}x{size}: this check compares unresampled images")
        x = torch.from_numpy(np.asarray(image, dtype=np.float32).copy()).permute(2, 0, 1) / 255.0
        x = ((x - mean) / std).unsqueeze(0)
        with torch.no_grad():
            p = torch.softmax(model(pixel_values=x).logits.float(), dim=1)[0]
        top = torch.topk(p, len(record["top"]))
        for rank, entry in enumerate(record["top"]):
            if entry["index"] != top.indices[rank].item():
                mismatches += 1
            worst = max(worst, abs(entry["p"] - top.values[rank].item()))
    print(f"{len(records)} images: {mismatches} class mismatches, max |p difference| {worst:.3g} (tolerance {TOLERANCE})")
    sys.exit(0 if records and mismatches == 0 and worst < TOLERANCE else 1)


if __name__ == "__main__":
    main()
