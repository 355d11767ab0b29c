"""Would a classified post-filter (one filter per pixel class, as video codecs' ALF) beat the one global filter?

AVIF's lead on Kodak sits on images with straight edges and smooth areas
(`results/bench/kodak-per-image-vs-avif.md`), where a single least-squares
filter per stage (`codec/postfilter.py`) treats a block border, a flat patch
and an edge alike. This fits format 9's full filter (mode ALL: 102
coefficients) separately for each class of pixels, on the decoded image
itself and unquantized (an oracle for the distortion), and compares it with
the one global filter fitted the same way. The classes, all computable by the
decoder from the stage's decoded image:

- `pos4`: the pixel's place in the 16-pixel grid of stage 1's blocks (on a
  border row, a border column, both, neither);
- `pos9`: its distance, 0, 1 or 2+, from the nearest border row and column;
- `act4`: the quartile of its 4×4 block's Laplacian activity (luma);
- `act12`: `act4` × the block's direction (vertical, horizontal, neither).

Classes under 200 pixels keep the global filter. For each variant it prints
the PSNR gain over the global filter, the extra bits of the class filters
(each coded as format 9 codes one filter, `bitstream.filters.encode_filter`,
less the global filter's), and the change of the stage's rate + λ·distortion
as a percentage of the global filter's λ·distortion (negative: the classes
pay at the stage's λ). `g` is the global filter's own gain over no filter.
Images enter the stages as the encoder makes them (each stage's chosen
post-filter in the loop, symbols rounded, no search).

    python scripts/classified_postfilter_probe.py default 0,2,4 4

(model, quality levels, number of images from `kodak_sample`.)
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from PIL import Image

from cdcodec.bitstream.filters import MAX_PREFIX, FilterMode, PostFilter, encode_filter
from cdcodec.codec import postfilter
from cdcodec.codec.pipeline import _choose_filter, _filter_inputs, _InLoopFilter, _stage_lambda, _to_tensor, get_model

from kodak_sample import kodak_sample

#: Classes with fewer pixels keep the global filter (too few to fit 34 coefficients per channel).
MIN_CLASS_PIXELS = 200


def luma(image: np.ndarray) -> np.ndarray:
    return image @ np.array([0.299, 0.587, 0.114])


def activity_and_direction(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the sums over its 4×4 block of |vertical| and |horizontal| second differences of luma."""
    y = luma(image)
    padded = np.pad(y, 1, mode="edge")
    vertical = np.abs(2 * y - padded[:-2, 1:-1] - padded[2:, 1:-1])
    horizontal = np.abs(2 * y - padded[1:-1, :-2] - padded[1:-1, 2:])
    height, width = y.shape

    def block_sums(a: np.ndarray) -> np.ndarray:
        h4, w4 = -(-height // 4) * 4, -(-width // 4) * 4
        a = np.pad(a, ((0, h4 - height), (0, w4 - width)))
        sums = a.reshape(h4 // 4, 4, w4 // 4, 4).sum((1, 3))
        return np.repeat(np.repeat(sums, 4, 0), 4, 1)[:height, :width]

    return block_sums(vertical), block_sums(horizontal)


def classes(image: np.ndarray, kind: str) -> np.ndarray:
    """Each pixel's class (H×W ints) under one of the rules in the module docstring."""
    height, width = image.shape[:2]
    rows, cols = np.arange(height) % 16, np.arange(width) % 16
    if kind == "pos4":
        on_row = ((rows == 0) | (rows == 15))[:, None]
        on_col = ((cols == 0) | (cols == 15))[None, :]
        return (on_row * 1 + on_col * 2).astype(int)
    if kind == "pos9":
        row_distance = np.minimum(rows, 15 - rows).clip(max=2)
        col_distance = np.minimum(cols, 15 - cols).clip(max=2)
        return (row_distance[:, None] * 3 + col_distance[None, :]).astype(int)
    vertical, horizontal = activity_and_direction(image)
    activity = vertical + horizontal
    quartile = np.searchsorted(np.quantile(activity, [0.25, 0.5, 0.75]), activity)
    if kind == "act4":
        return quartile
    direction = np.where(vertical > 2 * horizontal, 1, np.where(horizontal > 2 * vertical, 2, 0))
    return quartile * 3 + direction


def filter_bits(weights: np.ndarray) -> int:
    """Bits of one mode-ALL filter with these (FEATURES, 3) weights, as format 9 codes it."""
    limit = (1 << (MAX_PREFIX - 1)) - 1  # as postfilter.fit clips
    integers = np.clip(np.round(weights.T.reshape(-1) * postfilter.PRECISION), -limit, limit).astype(np.int64)
    return 8 * len(encode_filter(PostFilter(FilterMode.ALL, integers)))


def main() -> None:
    torch.set_num_threads(1)
    model = sys.argv[1] if len(sys.argv) > 1 else "default"
    codec = get_model(None if model == "default" else model).codec
    levels = [int(v) for v in (sys.argv[2] if len(sys.argv) > 2 else "0,2").split(",")]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    for path in kodak_sample(count):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        original = rgb.astype(np.float64)
        height, width = original.shape[:2]
        x = _to_tensor(rgb, codec.config.multiple)
        for level in levels:
            loop = _InLoopFilter(height, width, lambda i, inputs: _choose_filter(codec, i, level, inputs, rgb))
            stage_images: list = []
            codec.analyse(x, codec.num_stages, level, stage_images, loop_filter=loop)
            line = f"{path.stem} L{level}"
            for index, images in enumerate(stage_images):
                inputs = _filter_inputs(images, height, width)
                features = np.concatenate([block for _, block in postfilter._blocks(inputs)], axis=0)
                decoded = inputs.reconstruction
                target = (original - decoded).reshape(-1, 3)
                lam = _stage_lambda(codec, index, level)

                def mse_of(correction: np.ndarray) -> float:
                    shown = np.clip(np.round(decoded + correction.reshape(decoded.shape)), 0, 255)
                    return float(np.mean((shown - original) ** 2))

                unfiltered = mse_of(np.zeros_like(target))
                global_weights = np.linalg.lstsq(features, target, rcond=None)[0]
                global_mse = mse_of(features @ global_weights)
                global_bits = filter_bits(global_weights)
                parts = [f"s{index + 1} g {10 * np.log10(unfiltered / global_mse):+.3f}"]
                for kind in ("pos4", "pos9", "act4", "act12"):
                    labels = classes(decoded, kind).reshape(-1)
                    correction = np.zeros_like(target)
                    bits = 0
                    for label in np.unique(labels):
                        mask = labels == label
                        if mask.sum() < MIN_CLASS_PIXELS:
                            correction[mask] = features[mask] @ global_weights
                            continue
                        weights = np.linalg.lstsq(features[mask], target[mask], rcond=None)[0]
                        correction[mask] = features[mask] @ weights
                        bits += filter_bits(weights)
                    mse = mse_of(correction)
                    cost_change = (bits - global_bits) / (height * width) + lam * (mse - global_mse) / 255**2
                    parts.append(
                        f"{kind} {10 * np.log10(global_mse / mse):+.3f}dB +{(bits - global_bits) / (height * width):.4f}bpp "
                        f"dJ/λ·mse {cost_change / (lam * global_mse / 255**2) * 100:+.1f}%"
                    )
                line += " | " + " ".join(parts)
            print(line, flush=True)


if __name__ == "__main__":
    main()
