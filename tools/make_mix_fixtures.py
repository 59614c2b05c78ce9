#!/usr/bin/env python3
"""Writes tests/fixtures/mix_timm.json: small batches and what timm's Mixup (float
batches) and FastCollateMixup (uint8 batches) make of them, with every random draw
timm made recorded, so the C++ test (tests/augment/test_mix.cpp) injects the same
draws and compares the arithmetic: images, soft targets, CutMix boxes and the
corrected lam. Regenerate after changing a case:

    .venv/bin/python tools/make_mix_fixtures.py      # scripts/setup.sh installs timm

The file records the torch, numpy and timm versions that wrote it.
"""
import json
import pathlib

import numpy as np
import timm
import timm.data.mixup as mixup
import torch

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "mix_timm.json"


class Recorder:
    """Wraps the functions timm draws through and records what they return."""

    def __init__(self):
        self.params = []   # (lam, use_cutmix) per call of _params_per_batch/_params_per_elem
        self.boxes = []    # per cutmix_bbox_and_lam call: lam in, randint draws, box, lam out
        self._randints = None

    def install(self):
        orig_batch, orig_elem = mixup.Mixup._params_per_batch, mixup.Mixup._params_per_elem
        orig_box, orig_randint = mixup.cutmix_bbox_and_lam, np.random.randint
        rec = self

        def per_batch(this):
            lam, cut = orig_batch(this)
            rec.params.append({"lam": [float(lam)], "cutmix": [bool(cut)]})
            return lam, cut

        def per_elem(this, n):
            lam, cut = orig_elem(this, n)
            rec.params.append({"lam": [float(v) for v in lam], "cutmix": [bool(c) for c in np.broadcast_to(cut, lam.shape)]})
            return lam, cut

        def randint(*args, **kwargs):
            v = orig_randint(*args, **kwargs)
            if rec._randints is not None:
                rec._randints.append(int(v))
            return v

        def box(img_shape, lam, **kwargs):
            rec._randints = []
            (yl, yh, xl, xh), lam_out = orig_box(img_shape, lam, **kwargs)
            rec.boxes.append({"lam_in": float(lam), "draws": rec._randints, "box": [int(yl), int(yh), int(xl), int(xh)],
                              "lam_out": float(lam_out)})
            rec._randints = None
            return (yl, yh, xl, xh), lam_out

        mixup.Mixup._params_per_batch, mixup.Mixup._params_per_elem = per_batch, per_elem
        mixup.cutmix_bbox_and_lam, np.random.randint = box, randint


def short(t):
    """float32 values to 8 significant digits (the test compares to float tolerance)."""
    if t.dtype == torch.uint8:
        return t.flatten().tolist()
    return [float(f"{v:.8g}") for v in t.flatten().tolist()]


def main():
    rec = Recorder()
    rec.install()
    cases = []
    configs = [
        # (name, Mixup kwargs, dtype, seeds)
        ("mixup_batch", dict(mixup_alpha=0.8, cutmix_alpha=0.0, mode="batch"), "f32", range(3)),
        ("cutmix_batch", dict(mixup_alpha=0.0, cutmix_alpha=1.0, mode="batch"), "f32", range(4)),
        ("cutmix_batch_uncorrected", dict(mixup_alpha=0.0, cutmix_alpha=1.0, mode="batch", correct_lam=False), "f32", range(3)),
        ("cutmix_minmax_batch", dict(mixup_alpha=0.0, cutmix_alpha=1.0, cutmix_minmax=[0.2, 0.8], mode="batch"), "f32", range(3)),
        ("both_batch", dict(mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5, mode="batch"), "f32", range(4)),
        ("both_elem", dict(mixup_alpha=0.4, cutmix_alpha=1.0, switch_prob=0.5, prob=0.8, mode="elem"), "f32", range(3)),
        ("both_pair", dict(mixup_alpha=0.4, cutmix_alpha=1.0, switch_prob=0.5, mode="pair"), "f32", range(3)),
        ("cutmix_minmax_elem", dict(mixup_alpha=0.0, cutmix_alpha=1.0, cutmix_minmax=[0.3, 0.9], mode="elem"), "f32", range(2)),
        ("mixup_batch_u8", dict(mixup_alpha=0.8, cutmix_alpha=0.0, mode="batch"), "u8", range(3)),
        ("both_elem_u8", dict(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem"), "u8", range(3)),
    ]
    n, c, h, w, classes = 6, 2, 7, 9, 5
    for name, kwargs, dtype, seeds in configs:
        for seed in seeds:
            np.random.seed(1000 + seed)
            torch.manual_seed(seed)
            labels = torch.randint(0, classes, (n,))
            smoothing = 0.1 if seed % 2 == 0 else 0.0
            rec.params.clear()
            rec.boxes.clear()
            if dtype == "f32":
                images = torch.randint(-64, 64, (n, c, h, w)).float() / 32  # exact in JSON, short
                m = mixup.Mixup(num_classes=classes, label_smoothing=smoothing, **kwargs)
                out, target = m(images.clone(), labels.clone())
            else:
                images = torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8)
                m = mixup.FastCollateMixup(num_classes=classes, label_smoothing=smoothing, **kwargs)
                out, target = m([(images[i].clone(), int(labels[i])) for i in range(n)])
            assert len(rec.params) == 1
            cases.append({
                "name": f"{name}/{seed}", "mode": kwargs["mode"], "dtype": dtype, "shape": [n, c, h, w],
                "num_classes": classes, "label_smoothing": smoothing,
                "correct_lam": kwargs.get("correct_lam", True), "cutmix_minmax": kwargs.get("cutmix_minmax", []),
                "images": images.flatten().tolist(), "labels": labels.tolist(),
                "draws": rec.params[0], "boxes": list(rec.boxes),
                "out_images": short(out), "out_targets": short(target),
            })
    doc = {"written_by": "tools/make_mix_fixtures.py", "timm": timm.__version__, "torch": torch.__version__,
           "numpy": np.__version__, "cases": cases}
    OUT.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({len(cases)} cases, timm {timm.__version__})")


if __name__ == "__main__":
    main()
