#!/usr/bin/env python3
"""Writes tests/fixtures/augment_torchvision.json: small random uint8 images and what
torchvision.transforms.functional makes of them, for the C++ tests to compare against
(tests/data/test_augment.cpp). Regenerate after changing a case:

    # torchvision and Pillow: scripts/setup.sh installs them (torchvision pinned to torch 2.11)
    .venv/bin/python tools/make_augment_fixtures.py

The file records the torch and torchvision versions that wrote it.
"""
import json
import pathlib

import numpy as np
import torch
import torchvision
import torchvision.transforms.functional as F
from PIL import Image

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "augment_torchvision.json"


def hwc(t):  # uint8 CHW tensor -> nested HWC list
    return t.permute(1, 2, 0).contiguous().flatten().tolist()


def main():
    rng = np.random.default_rng(2026)
    images = [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in [(6, 7), (5, 9), (8, 8)]]
    cases = []
    inputs = []  # each input image once; cases refer to it by position

    def add(op, params, image, output, output_shape, dtype="u8"):
        for k, known in enumerate(inputs):
            if known.shape == image.shape and np.array_equal(known, image):
                break
        else:
            inputs.append(image)
            k = len(inputs) - 1
        cases.append({"op": op, "params": params, "input": k, "output_shape": output_shape, "dtype": dtype,
                      "output": output})

    for image in images:
        t = torch.from_numpy(image).permute(2, 0, 1).contiguous()
        h, w = image.shape[:2]
        for mode in ["constant", "edge", "reflect", "symmetric"]:
            for padding in ([3, 3, 3, 3], [1, 2, 3, 4]):
                padded = F.pad(t, padding, fill=17, padding_mode=mode)
                for top, left in [(0, 0), (2, 3), (padded.shape[1] - h, padded.shape[2] - w)]:
                    out = F.crop(padded, top, left, h, w)
                    add("pad_crop", {"padding": padding, "mode": mode, "fill": 17, "top": top, "left": left,
                                     "height": h, "width": w}, image, hwc(out), [h, w, 3])
        for size in ([4, 5], [3, 3], [h + 3, w + 2], [h, w + 1]):
            out = F.center_crop(t, size)
            add("center_crop", {"size": size}, image, hwc(out), [size[0], size[1], 3])
        add("hflip", {}, image, hwc(F.hflip(t)), [h, w, 3])
        mean, std = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]
        out = F.normalize(F.to_tensor(Image.fromarray(image)), mean, std)
        add("normalize", {"mean": mean, "std": std}, image, [float(v) for v in out.flatten().tolist()],
            [3, h, w], "f32")

    # Resizing, on PIL images as torchvision's classic pipeline does (PIL's resampling).
    big = [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in [(37, 53), (24, 24)]]
    for image in big:
        pil = Image.fromarray(image)
        for name, mode in [("bilinear", F.InterpolationMode.BILINEAR), ("bicubic", F.InterpolationMode.BICUBIC)]:
            for size in ([16], [11, 30], [64], [40, 47], [60, 20], [30, 70]):
                out = np.asarray(F.resize(pil, size, interpolation=mode))
                add("resize", {"size": size, "interpolation": name}, image, out.flatten().tolist(), list(out.shape))
            out = np.asarray(F.resized_crop(pil, 3, 5, 17, 13, [20, 20], interpolation=mode))
            add("resized_crop", {"top": 3, "left": 5, "height": 17, "width": 13, "size": [20, 20],
                                 "interpolation": name}, image, out.flatten().tolist(), list(out.shape))

    # Colour adjustments, on uint8 tensors (torchvision's tensor implementation).
    for image in images + big[:1]:
        t = torch.from_numpy(image).permute(2, 0, 1).contiguous()
        h, w = image.shape[:2]
        for op, fn, factors in [("brightness", F.adjust_brightness, [0.0, 0.6, 1.0, 1.7]),
                                ("contrast", F.adjust_contrast, [0.0, 0.5, 1.4]),
                                ("saturation", F.adjust_saturation, [0.0, 0.3, 1.8]),
                                ("hue", F.adjust_hue, [-0.5, -0.2, 0.05, 0.37])]:
            for factor in factors:
                add(op, {"factor": factor}, image, hwc(fn(t, factor)), [h, w, 3])

    # RandAugment: every operation through torchvision's own _apply_op on uint8 tensors,
    # at magnitudes from its own table (both signs), and the table itself.
    from torchvision.transforms import autoaugment as AA
    ra = torchvision.transforms.RandAugment()
    table = []
    for h, w in [(13, 17), (16, 20)]:
        space = ra._augmentation_space(31, (h, w))
        for name, (magnitudes, signed) in space.items():
            values = [float(magnitudes[b].item()) if magnitudes.ndim > 0 else 0.0 for b in (0, 9, 15, 30)]
            table.append({"op": name, "height": h, "width": w, "bins": 31, "at": [0, 9, 15, 30], "values": values})
    for image in [rng.integers(0, 256, size=(13, 17, 3), dtype=np.uint8),
                  rng.integers(0, 256, size=(16, 20, 3), dtype=np.uint8)]:
        t = torch.from_numpy(image).permute(2, 0, 1).contiguous()
        h, w = image.shape[:2]
        space = ra._augmentation_space(31, (h, w))
        for name, (magnitudes, signed) in space.items():
            for b in (9, 30):
                magnitude = float(magnitudes[b].item()) if magnitudes.ndim > 0 else 0.0
                for sign in ((1.0, -1.0) if signed else (1.0,)):
                    out = AA._apply_op(t, name, magnitude * sign, interpolation=F.InterpolationMode.NEAREST, fill=None)
                    add("randaugment_op", {"op": name, "magnitude": magnitude * sign}, image, hwc(out), [h, w, 3])

    OUT.parent.mkdir(parents=True, exist_ok=True)
    document = {"generator": "tools/make_augment_fixtures.py", "torch": torch.__version__,
                "torchvision": torchvision.__version__,
                "inputs": [{"shape": list(i.shape), "pixels": i.flatten().tolist()} for i in inputs],
                "cases": cases, "randaugment_table": table}
    OUT.write_text(json.dumps(document, separators=(",", ":")) + "\n")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
