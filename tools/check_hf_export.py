#!/usr/bin/env python3
"""Loads a flowrun export with transformers and checks its logits against the ones
flowrun computed: check_hf_export.py EXPORT_FOLDER CHECK.safetensors (tensors
"input" and "logits"). Exit 0 when they agree within 1e-4. Used by the test suite."""
import sys

import torch
from safetensors.torch import load_file
from transformers import ViTForImageClassification


def main():
    folder, check = sys.argv[1], sys.argv[2]
    model = ViTForImageClassification.from_pretrained(folder).eval()
    expected = load_file(check)
    with torch.no_grad():
        logits = model(pixel_values=expected["input"]).logits
    diff = (logits - expected["logits"]).abs().max().item()
    print(f"transformers logits vs flowrun: max abs difference {diff:.3g}")
    sys.exit(0 if diff < 1e-4 else 1)


if __name__ == "__main__":
    main()
