#!/usr/bin/env python3
"""Writes tests/fixtures/decode/: small JPEGs that Pillow encodes (Adobe CMYK, grayscale,
progressive 4:2:0 RGB) from synthetic pixels, and the RGB pixels Pillow decodes them to
(Image.open(...).convert("RGB"), what torchvision's ImageFolder loader does), for
tests/data/test_decode.cpp. Regenerate:

    .venv/bin/pip install pillow numpy   # once
    .venv/bin/python tools/make_decode_fixtures.py
"""
import json
import pathlib

import numpy as np
import PIL
from PIL import Image

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "decode"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    blocky = lambda a: np.repeat(np.repeat(a, 4, 0), 4, 1)  # JPEG-friendly content
    images = {
        "cmyk.jpg": (Image.fromarray(blocky(rng.integers(0, 256, (6, 8, 4), dtype=np.uint8)), "CMYK"), {}),
        "gray.jpg": (Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8), "L"), {}),
        "progressive420.jpg": (Image.fromarray(rng.integers(0, 256, (20, 28, 3), dtype=np.uint8)),
                               {"progressive": True, "subsampling": 2}),
    }
    expected = {"generator": "tools/make_decode_fixtures.py", "pillow": PIL.__version__, "files": {}}
    for name, (image, options) in images.items():
        image.save(OUT / name, quality=92, **options)
        rgb = np.asarray(Image.open(OUT / name).convert("RGB"))
        expected["files"][name] = {"shape": list(rgb.shape), "rgb": rgb.flatten().tolist()}
    (OUT / "expected.json").write_text(json.dumps(expected, separators=(",", ":")) + "\n")
    print(f"wrote {len(images)} files to {OUT}")


if __name__ == "__main__":
    main()
