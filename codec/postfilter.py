"""Adaptive post-filter: a small linear correction fitted per image and per stage, sent in the file.

Why: the stages' refine networks are trained at one quantizer step and are
used at five (the quality levels), on images they never saw. What they leave
behind is partly linear and image-specific: a colour or contrast shift, a
little too much or too little smoothing. A least-squares (Wiener) filter
fitted by the encoder on the image itself removes that part, and its
coefficients cost a few hundred bits; the encoder sends one only where the
saving in distortion is worth its bits at the stage's rate-distortion trade-off
(the λ the stage was trained with). Video codecs do the same with their
adaptive loop filters.

The filter works on pixel values in 0..255 (the stage's reconstruction before
rounding). For output channel c it adds to the decoded value

- the differences between each of the 8 neighbours and the pixel itself, in
  channel c (mode OWN) or in all three channels (mode ALL): sharpening or
  smoothing, and luma edges steering chroma;
- the pixel's three channel values, centred on 128 and divided by
  LEVEL_SCALE: a colour matrix (the division gives these coefficients a finer
  step, which their large inputs need);
- at the pixel, in each channel, what the stage's refine CNN added to its
  linear estimate, and what the stage added to the previous stage's image: a
  CNN trained at one quantizer step corrects too much or too little at the
  others, and this lets the encoder re-weigh it per image (on four Kodak images
  these two inputs more than doubled the filter's gain at the finest level);
- a constant.

Coefficients are integers in units of 1/PRECISION. Since format 10 the filter
is also a loop filter: stage k + 1 refines stage k's filtered image, so the
later stages start from the better image (on eight Kodak images at all five
levels they needed 0.7-2% fewer bits for it: results/codec-study/inloop-filter.md).
The exact stages never see it: they code what the lossy stages' linear parts
leave (`exact.py`), and their files carry no filters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..bitstream.filters import COEFFICIENTS, MAX_PREFIX, NO_FILTER, FilterMode, PostFilter, encode_filter
from .similarity import ms_ssim

#: Coefficients are integers over PRECISION.
PRECISION = 256
#: The colour-matrix inputs are (value - 128) / LEVEL_SCALE.
LEVEL_SCALE = 16
NEIGHBOURS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))
#: Pixels per block of rows when building features (at least one row): bounds memory on large images.
CHUNK_PIXELS = 1 << 16


@dataclass(frozen=True)
class FilterInputs:
    """What the filter reads, each a float64 H×W×3 array of pixel levels (0..255, unrounded):
    the stage's reconstruction, its linear estimate before the refine CNN, and
    the image before the stage (the previous stage's filtered reconstruction,
    or the flat grey start of stage 1)."""

    reconstruction: np.ndarray
    estimate: np.ndarray
    previous: np.ndarray


#: Columns of the full feature matrix (`_blocks`): per source channel 8 neighbour
#: differences, then per channel the centred level, the refine CNN's share and the
#: stage's share, then the constant.
_DIFFERENCES = 3 * len(NEIGHBOURS)
FEATURES = _DIFFERENCES + 3 * 3 + 1


def taps(mode: FilterMode) -> int:
    """Coefficients per output channel."""
    return len(_columns(mode, 0))


def _columns(mode: FilterMode, channel: int) -> list[int]:
    """Which columns of the full feature matrix output `channel` uses in `mode`:
    mode ALL all of them, mode OWN only the channel's own neighbour differences
    and the shared rest."""
    shared = list(range(_DIFFERENCES, FEATURES))
    if mode == FilterMode.ALL:
        return list(range(_DIFFERENCES)) + shared
    return list(range(channel * len(NEIGHBOURS), (channel + 1) * len(NEIGHBOURS))) + shared


assert all(3 * taps(mode) == COEFFICIENTS[mode] for mode in (FilterMode.OWN, FilterMode.ALL))


def apply(inputs: FilterInputs, post_filter: PostFilter) -> np.ndarray:
    """The filtered image (float64, H×W×3, not rounded)."""
    decoded = inputs.reconstruction
    if post_filter.mode == FilterMode.NONE:
        return decoded
    weights = _weights(post_filter)
    out = np.empty_like(decoded)
    for rows, features in _blocks(inputs):
        out[rows] = _filtered(decoded, rows, features, weights)
    return out


def _filtered(decoded: np.ndarray, rows: slice, features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Rows `rows` of the reconstruction plus the filter's correction (`features` are those rows')."""
    return decoded[rows] + (features @ weights).reshape(decoded[rows].shape)


def fit(inputs: FilterInputs, original: np.ndarray, mode: FilterMode) -> PostFilter:
    """Least-squares coefficients that bring the reconstruction closest to `original`, rounded to integers."""
    return _fit_all(inputs, original)[mode]


def choose(inputs: FilterInputs, original: np.ndarray, lam: float, pixels: int) -> PostFilter:
    """The filter (possibly none) with the least rate + λ·distortion for this stage, among those
    that do not lower MS-SSIM.

    `lam` is the stage's rate-distortion weight in bits per pixel per unit of
    mean squared error on a 0..1 scale (`networks.lambda_for_step`); `pixels`
    is the image's pixel count. Distortion is measured on the rounded, clipped
    pixels the decoder will show. The fit minimises squared error, which can
    cost MS-SSIM (on the MS-SSIM model's finest stage it did); users compare
    both, so a filter that trades one for the other is not sent. Images too
    small for MS-SSIM's five scales skip that check.
    """
    original = np.asarray(original, dtype=np.float64)
    candidates = list(_fit_all(inputs, original).values())  # candidates[0] is NO_FILTER
    weights = [_weights(candidate) for candidate in candidates]
    shown = [np.empty(original.shape, dtype=np.uint8) for _ in candidates]
    for rows, features in _blocks(inputs):  # one pass renders every candidate
        for image, w in zip(shown, weights):
            image[rows] = np.clip(np.round(_filtered(inputs.reconstruction, rows, features, w)), 0, 255)
    errors = [float(np.mean((image - original) ** 2)) / (255.0 * 255.0) for image in shown]
    costs = [8 * len(encode_filter(c)) / pixels + lam * e for c, e in zip(candidates, errors)]
    unfiltered = None
    for index in np.argsort(costs, kind="stable"):
        if candidates[index].mode == FilterMode.NONE:
            return NO_FILTER
        if unfiltered is None:
            unfiltered = ms_ssim(original, shown[0])
        if unfiltered is None or ms_ssim(original, shown[index]) >= unfiltered:  # None: too small to measure
            return candidates[index]
    return NO_FILTER


def _fit_all(inputs: FilterInputs, original: np.ndarray) -> dict[FilterMode, PostFilter]:
    """The least-squares filter of every mode, from one pass over the image.

    Every mode's normal equations are a sub-block of the full feature matrix's,
    so one Gram matrix serves them all.
    """
    decoded = inputs.reconstruction
    original = np.asarray(original, dtype=np.float64)
    gram = np.zeros((FEATURES, FEATURES))
    moments = np.zeros((FEATURES, 3))
    for rows, features in _blocks(inputs):
        gram += features.T @ features
        moments += features.T @ (original[rows] - decoded[rows]).reshape(-1, 3)
    limit = (1 << (MAX_PREFIX - 1)) - 1
    filters = {FilterMode.NONE: NO_FILTER}
    for mode in (FilterMode.OWN, FilterMode.ALL):
        solutions = []
        for channel in range(3):
            cols = _columns(mode, channel)
            # lstsq, not solve: a flat or grey image (or stage 1, whose previous image is flat) makes the normal equations singular.
            solutions.append(np.linalg.lstsq(gram[np.ix_(cols, cols)], moments[cols, channel], rcond=None)[0])
        integers = np.clip(np.round(np.concatenate(solutions) * PRECISION), -limit, limit)
        filters[mode] = PostFilter(mode, integers.astype(np.int64))
    return filters


def _weights(post_filter: PostFilter) -> np.ndarray:
    """The filter as a (FEATURES, 3) matrix of real weights (zero for no filter)."""
    weights = np.zeros((FEATURES, 3))
    if post_filter.mode == FilterMode.NONE:
        return weights
    per_channel = post_filter.coefficients.reshape(3, -1) / PRECISION
    for channel in range(3):
        weights[_columns(post_filter.mode, channel), channel] = per_channel[channel]
    return weights


def _blocks(inputs: FilterInputs):
    """Yield (row slice, full feature matrix) for blocks of about CHUNK_PIXELS pixels.

    The matrix is (rows·width, FEATURES), columns as `_DIFFERENCES` and
    `FEATURES` describe. Neighbours beyond the image edge repeat the edge pixel.
    """
    decoded = inputs.reconstruction
    height, width = decoded.shape[:2]
    padded = np.pad(decoded, ((1, 1), (1, 1), (0, 0)), mode="edge")
    block_rows = max(1, CHUNK_PIXELS // width)
    for top in range(0, height, block_rows):
        rows = min(block_rows, height - top)
        band = slice(top, top + rows)
        centre = decoded[band]
        columns = [
            padded[1 + top + dy : 1 + top + dy + rows, 1 + dx : 1 + dx + width, source] - centre[:, :, source]
            for source in range(3)
            for dy, dx in NEIGHBOURS
        ]
        columns += [(centre[:, :, source] - 128.0) / LEVEL_SCALE for source in range(3)]
        columns += [centre[:, :, source] - inputs.estimate[band][:, :, source] for source in range(3)]
        columns += [centre[:, :, source] - inputs.previous[band][:, :, source] for source in range(3)]
        columns.append(np.ones((rows, width)))
        yield band, np.stack(columns, axis=-1).reshape(rows * width, -1)
