"""Two questions about the exact stage's remaining gap to JPEG XL (a measurement, not a feature)

The lossless stage (`bitstream/residual.py`) codes pixels coarse to fine over
interlaced phases, and predicts them from the integer preview (the linear part
of the lossy stage). It ended up about 4.5% above JPEG XL at effort 7 on Kodak
with format 4, when `results/exact/what_if.md` was made (3.8% with format 5,
which codes red and blue as differences from green; the raster variant does
the same since; format 6 then came 0.7% below), and JPEG XL scans in raster
order. Since format 6 the base and refined columns include its bias correction
and agreement context, which the raster variant does not have, so a re-run no
longer compares like with like on that point. This script measures, per image, what each of two
changes would do, with everything else (predictor inputs, classes, robust fit,
error contexts, table family, side information) kept as in the coder:

- raster: every pixel in raster order, predicted from its causal neighbours
  at distance 1 and 2 (W, N, NW, NE, WW, NN) instead of the interlaced phases.
  Its bits are the ideal code lengths under the chosen tables plus the side
  information, without the entropy coder's own small overhead; a decoder
  would need a loop per pixel, so this is an estimate only.
- refined: the interlaced coder predicting from the float lossy reconstruction
  (stage 1's refine CNN output) instead of the integer preview. Not exact
  across machines, so not usable as is; it bounds what an integer refine
  network in the preview could gain.

`base` is the real payload of the exact stage as shipped. The preview and the
lossy base are the default model's stage 1 at quality level 0, as in
`results/exact/` (`--stages 1 --quality 0`).

    python scripts/exact_what_if.py --images ../shared/data/kodak --limit 24
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from cdcodec.bench.images import folder_images
from cdcodec.bitstream import residual as R
from cdcodec.codec import pipeline
from exact_predictor_features import stage1_preview  # this folder is on sys.path when run as a script

#: Causal neighbours in raster order, nearest first.
CAUSAL = ((0, -1), (-1, 0), (-1, -1), (-1, 1), (0, -2), (-2, 0))
#: The four nearest of them: the predictor class and the error context look at these.
NEAREST = 4


def preview_and_reconstruction(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(integer preview, float lossy reconstruction rounded to uint8) of stage 1 at quality 0."""
    lossy = pipeline.decode(pipeline.encode(pixels, stages=1, quality=0), stages=1)
    return stage1_preview(pixels), lossy


def interlaced_bits(pixels: np.ndarray, prediction: np.ndarray) -> int:
    """Real payload bits of the shipped exact stage correcting `prediction`."""
    residual = pixels.astype(np.int64) - prediction.astype(np.int64)
    return 8 * len(R.encode_residual(residual, prediction, 0, 0))


def _shifted(plane: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """plane[y + dy, x + dx] at every (y, x), mirrored at the borders like the coder's neighbours."""
    height, width = plane.shape
    padded = np.pad(plane, 2, mode="reflect")
    return padded[2 + dy : 2 + dy + height, 2 + dx : 2 + dx + width]


def raster_bits(pixels: np.ndarray, preview: np.ndarray) -> float:
    """Ideal bits (code lengths + side information) of the coder's machinery in raster order."""
    image = R.subtract_green(pixels)
    preview = R.subtract_green(preview)
    residual = image - preview
    radius = R.coded_radius(0, image.shape[2])
    span = 2 * radius
    lengths, width = R._code_lengths(span), 2 * span + 1
    order = R.CHANNEL_ORDER[image.shape[2]]
    bits, errors, own_of = 0.0, {}, {}
    for channel in order:
        centre = preview[:, :, channel].astype(np.int64)
        own = [_shifted(image[:, :, channel], dy, dx) - centre for dy, dx in CAUSAL]
        near = [_shifted(centre, dy, dx) for dy, dx in ((0, -1), (-1, 0), (0, 1), (1, 0))]
        inputs = own + [len(near) * centre - sum(near)]
        for earlier in order[: order.index(channel)]:
            inputs += [residual[:, :, earlier]] + own_of[earlier][:NEAREST]
        own_of[channel] = own
        inputs.append(np.ones_like(centre))
        classes = R.predictor_classes(own[:NEAREST], centre.shape)
        stacked, target = R._stack(inputs), residual[:, :, channel]
        coefficients = {}
        rows, present = R._split(classes, len(R.CLASS_THRESHOLDS) + 1)
        for k, start, stop in present:
            coefficients[k] = R._fit(stacked[rows[start:stop]], target.ravel()[rows[start:stop]])
            bits += 8 * len(inputs)
        prediction, fraction = R._rounded(R._sums(stacked, classes, coefficients), radius)
        error = target - prediction
        errors[channel] = np.abs(error)
        around = sum(_shifted(errors[channel], dy, dx) for dy, dx in CAUSAL[:NEAREST])
        bucket = R._bucket(R.ERROR_THRESHOLDS, (around + NEAREST // 2) // NEAREST)
        second = classes if channel == order[0] else R._bucket(R.NEIGHBOUR_THRESHOLDS, errors[order[0]])
        sign, offset = R._centring(fraction)
        keys = (bucket * R.NEIGHBOUR_BUCKETS + second) * R.OFFSET_STEPS + offset
        rows, present = R._split(keys, R.CONTEXTS * R.OFFSET_STEPS)
        coded, centres = (error * sign).ravel()[rows], offset.ravel()[rows]
        for parts in R._by_context(present):
            start, stop = parts[0][1], parts[-1][2]
            table = int(R._best_tables(np.zeros(stop - start, dtype=np.int64), coded[start:stop], centres[start:stop], span)[0][0])
            bits += lengths[table, centres[start:stop] * width + coded[start:stop] + span].sum() + 8
    return bits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=24)
    args = parser.parse_args()
    torch.set_num_threads(1)
    totals = {"base": 0.0, "raster": 0.0, "refined": 0.0}
    samples = 0
    print("| image | base bpsp | raster | refined |")
    print("|---|---:|---:|---:|")
    for image in folder_images(args.images)[: args.limit]:
        pixels = image.pixels
        if pixels.ndim != 3 or pixels.shape[2] != 3:
            raise SystemExit(f"{image.name}: this measurement takes RGB images only")
        preview, lossy = preview_and_reconstruction(pixels)
        bits = {
            "base": interlaced_bits(pixels, preview),
            "raster": raster_bits(pixels, preview),
            "refined": interlaced_bits(pixels, lossy.reshape(pixels.shape)),
        }
        size = pixels.size
        samples += size
        for key, value in bits.items():
            totals[key] += value
        base = bits["base"] / size
        print(f"| {image.name} | {base:.3f} | {bits['raster'] / size:.3f} ({100 * (bits['raster'] / bits['base'] - 1):+.1f}%) "
              f"| {bits['refined'] / size:.3f} ({100 * (bits['refined'] / bits['base'] - 1):+.1f}%) |")
    base = totals["base"]
    print(f"| all (bits summed) | {base / samples:.3f} | {totals['raster'] / samples:.3f} ({100 * (totals['raster'] / base - 1):+.1f}%) "
          f"| {totals['refined'] / samples:.3f} ({100 * (totals['refined'] / base - 1):+.1f}%) |")


if __name__ == "__main__":
    main()
