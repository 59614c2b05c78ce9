#!/usr/bin/env python3
"""Writes tiny random ViTs from the real libraries, with their logits on a fixed
input, for tests/model/test_vit_weights.cpp:

    tests/fixtures/vit/hf_classifier/   transformers ViTForImageClassification.save_pretrained
    tests/fixtures/vit/hf_model/        transformers ViTModel (no head, with its pooler)
    tests/fixtures/vit/timm_token.safetensors, timm_avg.safetensors
                                        timm VisionTransformer state dicts (CLS and mean pooling)
    tests/fixtures/vit/expected.safetensors
                                        the input batch and each model's logits / features

Every parameter is drawn at random (std 0.2), so a wrong name mapping, a swapped
q/k/v or a transposed weight changes the logits. Regenerate (scripts/setup.sh
installs the pinned transformers and timm):

    .venv/bin/python tools/make_vit_fixtures.py
"""
import json
import pathlib

import timm
import torch
import transformers
from safetensors.torch import save_file
from transformers import ViTConfig, ViTForImageClassification, ViTModel

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "vit"
SHAPE = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
             intermediate_size=64)


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model.eval()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    expected = {"input": x}

    hf_config = ViTConfig(**SHAPE, num_labels=5, layer_norm_eps=1e-12)
    hf = randomize(ViTForImageClassification(hf_config), 1)
    hf.save_pretrained(OUT / "hf_classifier", safe_serialization=True)
    with torch.no_grad():
        expected["hf_classifier"] = hf(pixel_values=x).logits

    hf_model = randomize(ViTModel(ViTConfig(**SHAPE, layer_norm_eps=1e-12)), 2)
    hf_model.save_pretrained(OUT / "hf_model", safe_serialization=True)
    with torch.no_grad():
        expected["hf_model_features"] = hf_model(pixel_values=x).last_hidden_state[:, 0]

    for pool, seed in (("token", 3), ("avg", 4)):
        m = timm.models.vision_transformer.VisionTransformer(
            img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4, mlp_ratio=2.0, num_classes=5,
            global_pool=pool)
        randomize(m, seed)
        save_file({k: v.contiguous() for k, v in m.state_dict().items()}, OUT / f"timm_{pool}.safetensors")
        with torch.no_grad():
            expected[f"timm_{pool}"] = m(x)

    save_file({k: v.contiguous() for k, v in expected.items()}, OUT / "expected.safetensors",
              metadata={"transformers": transformers.__version__, "timm": timm.__version__,
                        "torch": torch.__version__, "shape": json.dumps(SHAPE)})
    print(f"wrote {OUT} (transformers {transformers.__version__}, timm {timm.__version__})")


if __name__ == "__main__":
    main()
