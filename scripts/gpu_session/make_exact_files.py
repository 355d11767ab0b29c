"""Encode two Kodak crops lossless and with D = 1 here, and record the decoded pixels' SHA-256.

The other machine decodes the same files (`check_exact_files.py`): issue 4 asks
that exact decoding give identical pixels on every machine, whatever its CPU,
libraries, thread count or GPU. One crop has odd sides.

Usage: python scripts/gpu_session/make_exact_files.py ../shared/data/kodak gpu-carry/exact
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cdcodec.codec.pipeline import decode, encode

CROPS = {"kodim01": (0, 0, 256, 192), "kodim23": (200, 150, 457, 343)}


def main(kodak: Path, out: Path) -> None:
    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    expected = {}
    for name, box in CROPS.items():
        image = np.asarray(Image.open(kodak / f"{name}.png").convert("RGB").crop(box))
        for mode, options in (("lossless", {"lossless": True}), ("d1", {"max_error": 1})):
            data = encode(image, **options)
            path = out / f"{name}-{mode}.cdc"
            path.write_bytes(data)
            pixels = decode(data)
            error = int(np.abs(pixels.astype(int) - image.astype(int)).max())
            assert error <= (0 if mode == "lossless" else 1), (path, error)
            expected[path.name] = {"bytes": len(data), "shape": list(pixels.shape), "max_abs_error": error,
                                   "pixels_sha256": hashlib.sha256(pixels.tobytes()).hexdigest()}
    (out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"wrote {len(expected)} files and expected.json to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
