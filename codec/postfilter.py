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
- a constant.

Coefficients are integers in units of 1/PRECISION. It is a post-filter, not a
loop filter: stage k+1 codes what stage k's unfiltered reconstruction left, so
the exact stages and the later lossy stages never see it; each latent stage
carries the filter for a decode that stops there.
"""

from __future__ import annotations

import numpy as np

from ..bitstream.filters import COEFFICIENTS, MAX_PREFIX, NO_FILTER, FilterMode, PostFilter, encode_filter

#: Coefficients are integers over PRECISION.
PRECISION = 256
#: The colour-matrix inputs are (value - 128) / LEVEL_SCALE.
LEVEL_SCALE = 16
NEIGHBOURS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))
#: Rows per block when building features, which bounds memory on large images.
CHUNK_ROWS = 128


def taps(mode: FilterMode) -> int:
    """Coefficients per output channel."""
    return len(_columns(mode, 0))


def _columns(mode: FilterMode, channel: int) -> list[int]:
    """Which columns of the full feature matrix (`_blocks`) output `channel` uses in `mode`.

    The full matrix holds every source channel's 8 neighbour differences, then
    the 3 centred levels, then the constant; mode ALL uses all of it for every
    channel, mode OWN only the channel's own differences and the shared rest.
    """
    shared = list(range(3 * len(NEIGHBOURS), 3 * len(NEIGHBOURS) + 4))
    if mode == FilterMode.ALL:
        return list(range(3 * len(NEIGHBOURS))) + shared
    return list(range(channel * len(NEIGHBOURS), (channel + 1) * len(NEIGHBOURS))) + shared


assert all(3 * taps(mode) == COEFFICIENTS[mode] for mode in (FilterMode.OWN, FilterMode.ALL))


def apply(decoded: np.ndarray, post_filter: PostFilter) -> np.ndarray:
    """The filtered image (float64, H×W×3, not rounded) from a float H×W×3 reconstruction in 0..255."""
    decoded = np.asarray(decoded, dtype=np.float64)
    if post_filter.mode == FilterMode.NONE:
        return decoded
    weights = _weights(post_filter)
    out = np.empty_like(decoded)
    for rows, features in _blocks(decoded):
        out[rows] = decoded[rows] + (features @ weights).reshape(decoded[rows].shape)
    return out


def fit(decoded: np.ndarray, original: np.ndarray, mode: FilterMode) -> PostFilter:
    """Least-squares coefficients that bring `decoded` closest to `original`, rounded to integers."""
    return _fit_all(decoded, original)[mode]


def choose(decoded: np.ndarray, original: np.ndarray, lam: float, pixels: int) -> PostFilter:
    """The filter (possibly none) with the least rate + λ·distortion for this stage.

    `lam` is the stage's rate-distortion weight in bits per pixel per unit of
    mean squared error on a 0..1 scale (`networks.lambda_for_step`); `pixels`
    is the image's pixel count. Distortion is measured on the rounded, clipped
    pixels the decoder will show.
    """
    original = np.asarray(original, dtype=np.float64)
    best, best_cost = NO_FILTER, None
    for candidate in _fit_all(decoded, original).values():
        shown = np.clip(np.round(apply(decoded, candidate)), 0, 255)
        error = float(np.mean((shown - original) ** 2)) / (255.0 * 255.0)
        cost = 8 * len(encode_filter(candidate)) / pixels + lam * error
        if best_cost is None or cost < best_cost:
            best, best_cost = candidate, cost
    return best


def _fit_all(decoded: np.ndarray, original: np.ndarray) -> dict[FilterMode, PostFilter]:
    """The least-squares filter of every mode, from one pass over the image.

    Every mode's normal equations are a sub-block of the full feature matrix's,
    so one Gram matrix serves them all.
    """
    decoded = np.asarray(decoded, dtype=np.float64)
    original = np.asarray(original, dtype=np.float64)
    width = 3 * len(NEIGHBOURS) + 4
    gram = np.zeros((width, width))
    moments = np.zeros((width, 3))
    for rows, features in _blocks(decoded):
        gram += features.T @ features
        moments += features.T @ (original[rows] - decoded[rows]).reshape(-1, 3)
    limit = (1 << (MAX_PREFIX - 1)) - 1
    filters = {FilterMode.NONE: NO_FILTER}
    for mode in (FilterMode.OWN, FilterMode.ALL):
        solutions = []
        for channel in range(3):
            cols = _columns(mode, channel)
            # lstsq, not solve: a flat or grey image makes the normal equations singular.
            solutions.append(np.linalg.lstsq(gram[np.ix_(cols, cols)], moments[cols, channel], rcond=None)[0])
        integers = np.clip(np.round(np.concatenate(solutions) * PRECISION), -limit, limit)
        filters[mode] = PostFilter(mode, integers.astype(np.int64))
    return filters


def _weights(post_filter: PostFilter) -> np.ndarray:
    """The filter as a (full feature width, 3) matrix of real weights."""
    weights = np.zeros((3 * len(NEIGHBOURS) + 4, 3))
    per_channel = post_filter.coefficients.reshape(3, -1) / PRECISION
    for channel in range(3):
        weights[_columns(post_filter.mode, channel), channel] = per_channel[channel]
    return weights


def _blocks(decoded: np.ndarray):
    """Yield (row slice, full feature matrix) for blocks of CHUNK_ROWS rows.

    The matrix is (rows·width, 28): for each source channel the differences
    between its 8 neighbours and the pixel, then the three centred levels and
    a constant (`_columns` picks a mode's share). Neighbours beyond the image
    edge repeat the edge pixel.
    """
    height, width = decoded.shape[:2]
    padded = np.pad(decoded, ((1, 1), (1, 1), (0, 0)), mode="edge")
    for top in range(0, height, CHUNK_ROWS):
        rows = min(CHUNK_ROWS, height - top)
        centre = decoded[top : top + rows]
        columns = [
            padded[1 + top + dy : 1 + top + dy + rows, 1 + dx : 1 + dx + width, source] - centre[:, :, source]
            for source in range(3)
            for dy, dx in NEIGHBOURS
        ]
        columns += [(centre[:, :, source] - 128.0) / LEVEL_SCALE for source in range(3)] + [np.ones((rows, width))]
        yield slice(top, top + rows), np.stack(columns, axis=-1).reshape(rows * width, -1)
