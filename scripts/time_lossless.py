"""Wall time of cdcodec's lossless encode and decode per image, and where it goes.

Encodes every image with `--lossless --stages 1 --quality 0` (the smallest exact
files) and decodes it, in process, with the given torch thread count, checking
that the pixels come back exactly. Each image is first coded once untimed (the
model loads on first use). The split times the parts of one encode and one
decode separately: the lossy stage's analysis network and latent coding, the
integer preview, and the exact stage's residual coder.

Usage:
    python scripts/time_lossless.py --images ../shared/data/kodak --threads 1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import cdcodec
from cdcodec.bitstream import residual
from cdcodec.codec import pipeline


def _timed(function, totals: dict, key: str):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            totals[key] = totals.get(key, 0.0) + time.perf_counter() - start

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    files = sorted(p for p in args.images.iterdir() if p.suffix.lower() in {".png", ".ppm", ".bmp", ".tif", ".tiff"})
    parts: dict[str, float] = {}
    pipeline.encode_residual = _timed(residual.encode_residual, parts, "residual encode")
    pipeline.decode_residual = _timed(residual.decode_residual, parts, "residual decode")
    pipeline._preview = _timed(pipeline._preview, parts, "integer preview (encode and decode)")
    encode_s, decode_s = [], []
    for path in files:
        image = np.asarray(Image.open(path).convert("RGB"))
        cdcodec.decode(cdcodec.encode(image, lossless=True, stages=1, quality=0))
        parts.clear()
        start = time.perf_counter()
        data = cdcodec.encode(image, lossless=True, stages=1, quality=0)
        encode_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        decoded = cdcodec.decode(data)
        decode_s.append(time.perf_counter() - start)
        if not np.array_equal(decoded, image):
            raise SystemExit(f"{path.name}: lossless round trip is not exact")
        print(f"{path.name}: encode {encode_s[-1]:.3f} s, decode {decode_s[-1]:.3f} s; " + ", ".join(f"{k} {v:.3f} s" for k, v in parts.items()), flush=True)
    print(f"mean over {len(files)} images, {args.threads} thread(s): encode {np.mean(encode_s):.3f} s + decode {np.mean(decode_s):.3f} s = {np.mean(encode_s) + np.mean(decode_s):.3f} s")


if __name__ == "__main__":
    main()
