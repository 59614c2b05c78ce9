#!/usr/bin/env python3
"""Writes tests/fixtures/safetensors/small.safetensors with the reference `safetensors`
library (torch tensors of several dtypes, metadata) and expected.json with the values,
for tests/model/test_safetensors.cpp. Regenerate:

    .venv/bin/pip install safetensors==0.7.0   # once
    .venv/bin/python tools/make_safetensors_fixture.py
"""
import json
import pathlib

import safetensors
import torch
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "safetensors"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(3)
    tensors = {
        "blocks.0.attn.qkv.weight": torch.randn(6, 4, generator=g),
        "blocks.0.norm1.bias": torch.randn(4, generator=g).to(torch.float16),
        "cls_token": torch.randn(1, 1, 4, generator=g).to(torch.bfloat16),
        "head.steps": torch.tensor([3, -1, 7], dtype=torch.int64),
        "scale": torch.tensor(0.125),
    }
    save_file(tensors, OUT / "small.safetensors", metadata={"format": "pt", "made_by": "make_safetensors_fixture"})
    expected = {"generator": "tools/make_safetensors_fixture.py", "safetensors": safetensors.__version__,
                "tensors": {name: {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
                                   "values": t.to(torch.float64).flatten().tolist()} for name, t in tensors.items()}}
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
