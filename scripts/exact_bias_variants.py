"""How much does each part of the exact stage's bias correction save? (a measurement)

Format 6 corrects the linear prediction by the pattern the four nearest
neighbours make around it (`bitstream/residual.py`, `neighbour_patterns`), and
refines the table context by how many of them agree with it. This script codes
the same residuals with variants of that design, patched into this process
only, checks that every payload decodes back exactly, and prints bits per
sub-pixel of the residual payloads (real bytes; the lossy latent under them is
not included) against the first variant, which has neither part:

- no correction, no agreement context (format 5's modelling, with format 6's
  compressed side information);
- the agreement context alone;
- corrections with 3, 5 (as shipped) or 7 bands per neighbour;
- 5 bands with a minimum pattern count of 16, 64 or 128 instead of 32;
- corrections in red and blue only (how much of the gain is green's).

It also reports how much the zlib compression of the side information saves.
The preview is the default model's stage 1 at quality 0, as in
`results/exact/`.

    python scripts/exact_bias_variants.py --images ../shared/data/kodak --limit 6
"""

from __future__ import annotations

import argparse
import struct
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from cdcodec.bitstream import residual
from cdcodec.bench.images import folder_images
from exact_predictor_features import exact_payloads, stage1_preview

BANDS = {3: (-32, 32), 5: (-96, -32, 32, 96), 7: (-160, -96, -32, 32, 96, 160)}
VARIANTS = {
    "no correction, no agreement": dict(correct=False, agree=False),
    "agreement context only": dict(correct=False),
    "3 bands": dict(bands=3),
    "5 bands, min count 32 (shipped)": dict(),
    "7 bands": dict(bands=7),
    "5 bands, min count 16": dict(min_count=16),
    "5 bands, min count 64": dict(min_count=64),
    "5 bands, min count 128": dict(min_count=128),
    "corrections in red and blue only": dict(green=False),
}

_SHIPPED = {name: getattr(residual, name) for name in ("PATTERN_LEVELS", "PATTERNS", "PATTERN_MIN_COUNT", "SIDE_LIMIT_PER_GROUP")}
_FIT, _PATTERNS, _FEATURES = residual._fit_corrections, residual.neighbour_patterns, residual._State.features


@contextmanager
def variant(bands: int = 5, min_count: int = 32, correct: bool = True, agree: bool = True, green: bool = True):
    """The exact stage with this variant's settings, restored afterwards."""
    levels = np.array(BANDS[bands])
    patterns = (len(levels) + 1) ** residual.PATTERN_NEIGHBOURS
    current = {}

    def features(self, phase, channel, order):
        current["channel"] = channel
        return _FEATURES(self, phase, channel, order)

    def fit(pattern, errors):
        if not correct or (not green and current["channel"] == 1):
            return np.zeros(len(residual._corrected_patterns(pattern)), dtype=np.int64)  # never worth its flag
        return _FIT(pattern, errors)

    def patterns_and_agreement(own, sums):
        pattern, agreement = _PATTERNS(own, sums)
        return pattern, agreement if agree else np.zeros_like(agreement)

    residual.PATTERN_LEVELS, residual.PATTERNS, residual.PATTERN_MIN_COUNT = levels, patterns, min_count
    residual.SIDE_LIMIT_PER_GROUP = 4 * 32 + 1 + patterns + residual.CONTEXTS
    residual._fit_corrections, residual.neighbour_patterns, residual._State.features = fit, patterns_and_agreement, features
    try:
        yield
    finally:
        for name, value in _SHIPPED.items():
            setattr(residual, name, value)
        residual._fit_corrections, residual.neighbour_patterns, residual._State.features = _FIT, _PATTERNS, _FEATURES


def side_sizes(payload: bytes) -> tuple[int, int]:
    """(compressed, inflated) length of a payload's side information."""
    length = struct.unpack_from("<I", payload, 4)[0]
    return length, len(zlib.decompress(payload[8 : 8 + length]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=6, help="how many images to use")
    parser.add_argument("--every", type=int, default=1, help="take every n-th image of the folder (sorted)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    images = folder_images(args.images)[:: args.every][: args.limit]
    data = [(image.name, image.pixels.astype(np.int64), stage1_preview(image.pixels)) for image in images]
    print(f"{len(data)} images: {', '.join(name for name, _, _ in data)}")
    base = None
    for label, settings in VARIANTS.items():
        bits = samples = packed = inflated = 0
        with variant(**settings):
            for original, payload in exact_payloads(data, label):
                bits += 8 * len(payload)
                samples += original.size
                a, b = side_sizes(payload)
                packed, inflated = packed + a, inflated + b
        bpsp = bits / samples
        base = bpsp if base is None else base
        print(f"{label:34s} {bpsp:.4f} bpsp  {100 * (bpsp / base - 1):+.2f}%  (all exact)")
        if label.endswith("(shipped)"):
            print(f"{'':34s} side information {inflated} bytes, {packed} compressed: zlib saves {100 * (inflated - packed) * 8 / bits:.2f}% of the payload")


if __name__ == "__main__":
    main()
