"""Would nonlinear predictor inputs help the exact stage? (a measurement, not a feature)

The exact stage predicts each residual value linearly from its decoded
neighbours (`bitstream/residual.py`). Lossless coders such as CALIC and JPEG XL
also use nonlinear predictors: interpolate along the direction with the smaller
gradient, or take a median. This script adds such values as extra inputs of the
linear predictor (the per-image least-squares fit then decides how much to use
them) at every phase with four or more known neighbours, codes the residual,
checks that it decodes back, and prints bits per sub-pixel of the residual
payload for each variant:

- edge:  the sum of the opposite pair (up+down or left+right, or the two
         diagonals) whose difference is smaller;
- blend: both pair sums weighted by the other pair's difference;
- med:   the sum of the middle two of the four nearest neighbours.

It patches the private `_State.features` of the exact stage in this process
only; the format is unchanged. The preview is the default model's stage 1 at
quality level 0, as in `results/exact/` (`--stages 1 --quality 0`).

    python scripts/exact_predictor_features.py --images ../shared/data/kodak --limit 6
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from cdcodec.bench.images import folder_images
from cdcodec.bitstream import residual
from cdcodec.codec import pipeline
from cdcodec.codec.model import symbols_to_array

VARIANTS = ("base", "edge", "blend", "med", "edge+med")


def stage1_preview(pixels: np.ndarray) -> np.ndarray:
    """The exact stage's integer preview of an (H, W, 3) image: the default model's stage 1 at quality 0."""
    codec = pipeline.get_model().codec
    x = pipeline._to_tensor(pixels, codec.config.multiple)
    arrays = [symbols_to_array(q) for q in codec.analyse(x, 1, 0)]
    return pipeline._preview(codec, arrays, [0], pixels.shape[0], pixels.shape[1], 3)


def previews(folder: Path, limit: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, original, stage-1 preview at quality 0) for the first `limit` images."""
    return [(image.name, image.pixels.astype(np.int64), stage1_preview(image.pixels)) for image in folder_images(folder)[:limit]]


def extra_inputs(own: list[np.ndarray], variant: str) -> list[np.ndarray]:
    """The variant's nonlinear values from the four nearest neighbours (own[0..3], nearest first).

    In every phase with four nearest neighbours, own[0]/own[3] and own[1]/own[2]
    are opposite pairs (up/down and left/right, or the two diagonals).
    """
    a, b = own[0] + own[3], own[1] + own[2]
    ga, gb = np.abs(own[0] - own[3]), np.abs(own[1] - own[2])
    extra = []
    if "edge" in variant:
        extra.append(np.where(ga < gb, a, np.where(gb < ga, b, (a + b) // 2)))
    if "blend" in variant:
        extra.append((a * (gb + 1) + b * (ga + 1)) // (ga + gb + 2))
    if "med" in variant:
        middle = np.sort(np.stack(own[:4]), axis=0)
        extra.append(middle[1] + middle[2])
    return extra


def exact_payloads(data: list[tuple[str, np.ndarray, np.ndarray]], label: str):
    """(original, payload) per image: the residual over its preview coded, decoded back and checked exact."""
    for name, original, preview in data:
        payload = residual.encode_residual(original - preview, preview, 0, 0)
        back, _ = residual.decode_residual(payload, preview, 0)
        if not (back == original - preview).all():
            raise SystemExit(f"{label}: {name} did not decode back exactly")
        yield original, payload


_FEATURES = residual._State.features


def patch(variant: str) -> None:
    """Make the exact stage's predictor inputs those of `variant` (in this process)."""

    def features(self, phase, channel, order):
        inputs, own = _FEATURES(self, phase, channel, order)
        if len(own) >= 4 and variant != "base":
            inputs = inputs[:-1] + extra_inputs(own, variant) + inputs[-1:]  # the intercept stays last
        return inputs, own

    residual._State.features = features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=6)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = previews(args.images, args.limit)
    base = None
    for variant in VARIANTS:
        patch(variant)
        bits = samples = 0
        for original, payload in exact_payloads(data, variant):
            bits += 8 * len(payload)
            samples += original.size
        bpsp = bits / samples
        base = bpsp if base is None else base
        print(f"{variant:9s} residual {bpsp:.4f} bpsp  {100 * (bpsp / base - 1):+.2f}% vs base  ({len(data)} images, all exact)")


if __name__ == "__main__":
    main()
