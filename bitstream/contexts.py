"""Integer coding contexts: which table codes each latent symbol.

A stage's latent is coded channel by channel (channels are ordered from the
strongest transform component to the weakest). The table for the symbol of
channel c at position p is chosen by two integers known to the decoder before
it decodes that symbol:

- how many of the channels 0..c-1 at p are nonzero (the block's "activity so
  far": a block whose strong components are all zero rarely has a nonzero weak
  one; this is what JPEG's end-of-block code exploits), in COUNT_BUCKETS levels;
- what the previous stage coded there, in PRIOR_LEVELS levels. When the
  previous stage has the same latent grid and channel count (same block size,
  a transform started from the same basis), this is the magnitude of its symbol
  of the same channel at p, capped: where that symbol was nonzero the residual
  left for this stage is nearly uniform within one quantizer bin, where it was
  zero it is peaked at zero, and the two need different tables. Otherwise it is
  the previous stage's activity at p (nonzero symbols of its block covering p):
  residuals are large where the image is busy.

The count is "mixed" with the same count at the 4 neighbouring positions
(2:1 weight on its own position): the stronger channels are decoded
everywhere before channel c, so the neighbourhood is known, and a busy
neighbourhood predicts a busy block.

Each channel is coded in two halves of a checkerboard over the latent grid.
The first half (y + x even) is coded as above; the second half's table also
depends on how large the first-half symbols of the same channel are at its 4
neighbours (CHECKER_LEVELS: level 0 marks the first half). Spatially
neighbouring blocks have similar energy in each channel, which the first
rule cannot see (measured in scripts/latent_contexts.py: 2-4% fewer bits).

Both are computed from decoded integers only, so the contexts, and with them the
tables the entropy coder is fed, are identical on every machine.

Tables fitted with sign alignment (`sign_orientation`) also use the *signs* of
those first-half neighbours: a second-half symbol is coded negated where they
lean negative, so that its table, fitted on symbols oriented the same way, can
make the sign that agrees with the neighbours cheaper. The contexts above see
magnitudes only, and in a smooth region the low-frequency coefficients of
neighbouring blocks share their sign: the signs of nonzero symbols, about a
fifth of a stage's bits at low rates, then cost less than one bit each.
"""

from __future__ import annotations

import numpy as np

#: Upper-exclusive bounds of the nonzero-count buckets: 0, 1, 2, 3-4, 5-7, 8-12, 13-20, 21+.
COUNT_THRESHOLDS = np.array([1, 2, 3, 5, 8, 13, 21])
COUNT_BUCKETS = len(COUNT_THRESHOLDS) + 1
#: Previous-stage activity levels: 0, 1-2, 3-8, 9+ nonzero symbols in the covering block.
PRIOR_THRESHOLDS = np.array([1, 3, 9])
PRIOR_LEVELS = len(PRIOR_THRESHOLDS) + 1
#: Second-half levels from Σ|first-half neighbours| in the same channel: 0, 1, 2-3, 4+.
MAGNITUDE_THRESHOLDS = np.array([1, 2, 4])
#: Level 0: first checkerboard half; 1.. : second half by neighbour magnitude.
CHECKER_LEVELS = len(MAGNITUDE_THRESHOLDS) + 2
CONTEXTS = COUNT_BUCKETS * CHECKER_LEVELS * PRIOR_LEVELS


def stage_prior(previous: np.ndarray | None, prev_grid: tuple[int, int], grid: tuple[int, int], channels: int) -> np.ndarray:
    """Prior level (0..PRIOR_LEVELS-1) of every symbol of a (channels, h·w) latent on `grid`.

    `previous` is the previous stage's (C', h'·w') symbols on `prev_grid`, or None
    for the first stage (level 0 everywhere).
    """
    if previous is not None and previous.shape[0] == channels and tuple(prev_grid) == tuple(grid):
        return np.minimum(np.abs(previous.astype(np.int64)), PRIOR_LEVELS - 1)
    levels = prior_levels(previous, prev_grid, grid)
    return np.broadcast_to(levels, (channels, levels.shape[0]))


def prior_levels(previous: np.ndarray | None, prev_grid: tuple[int, int], grid: tuple[int, int]) -> np.ndarray:
    """Activity level (0..PRIOR_LEVELS-1) of the previous stage at each position of `grid`.

    `previous` is the previous stage's (C', h'·w') symbol array on `prev_grid`;
    None (the first stage) gives level 0 everywhere. The grids must be integer
    multiples of each other: a coarser previous grid is repeated, a finer one
    is summed over.
    """
    h, w = grid
    if previous is None:
        return np.zeros(h * w, dtype=np.int64)
    ph, pw = prev_grid
    counts = np.count_nonzero(previous, axis=0).reshape(ph, pw)
    counts = _resample(counts, ph, h)
    counts = _resample(counts.T, pw, w).T
    return np.searchsorted(PRIOR_THRESHOLDS, counts.reshape(-1), side="right").astype(np.int64)


def _resample(counts: np.ndarray, size: int, target: int) -> np.ndarray:
    """Map the first axis from `size` rows to `target` rows (integer ratio either way)."""
    if target == size:
        return counts
    if target % size == 0:
        return np.repeat(counts, target // size, axis=0)
    if size % target == 0:
        return counts.reshape(target, size // target, -1).sum(axis=1)
    raise ValueError(f"latent grids {size} and {target} are not integer multiples")


#: count_bucket as a lookup table over counts 0..COUNT_THRESHOLDS[-1] (larger counts clip to the last).
_COUNT_LOOKUP = np.searchsorted(COUNT_THRESHOLDS, np.arange(COUNT_THRESHOLDS[-1] + 1), side="right").astype(np.int64)
#: The second-half levels 1.. as a lookup table over Σ|neighbours| 0..MAGNITUDE_THRESHOLDS[-1].
_LEVEL_LOOKUP = 1 + np.searchsorted(MAGNITUDE_THRESHOLDS, np.arange(MAGNITUDE_THRESHOLDS[-1] + 1), side="right").astype(np.int64)


def count_bucket(nonzero_so_far: np.ndarray) -> np.ndarray:
    return _COUNT_LOOKUP[np.minimum(nonzero_so_far, COUNT_THRESHOLDS[-1])]


def checker_halves(grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Flat positions of the first (y + x even) and second checkerboard half of a grid."""
    h, w = grid
    parity = (np.arange(h)[:, None] + np.arange(w)[None, :]) % 2
    return np.flatnonzero(parity == 0), np.flatnonzero(parity == 1)


def neighbour_sum(values: np.ndarray, replicate_edge: bool) -> np.ndarray:
    """Σ of the 4 direct neighbours of every cell, over the last two axes.

    A neighbour outside the grid counts as the nearest cell inside it
    (`replicate_edge`) or as 0. Written as shifted adds because it runs twice
    per latent channel: np.pad costs more than the sum itself on small grids.
    """
    total = np.zeros_like(values)
    total[..., 1:, :] += values[..., :-1, :]
    total[..., :-1, :] += values[..., 1:, :]
    total[..., :, 1:] += values[..., :, :-1]
    total[..., :, :-1] += values[..., :, 1:]
    if replicate_edge:
        total[..., 0, :] += values[..., 0, :]
        total[..., -1, :] += values[..., -1, :]
        total[..., :, 0] += values[..., :, 0]
        total[..., :, -1] += values[..., :, -1]
    return total


def activity_bucket(so_far: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Count bucket of 2·(own count) + (Σ of the 4 neighbours' counts)/2, over 4, per position.

    `so_far` (h·w,) counts the nonzero stronger channels at every position; the
    grid's edge is repeated for neighbours outside it (they are all known).
    """
    h, w = grid
    if h * w == 0:
        return np.zeros(0, dtype=np.int64)
    counts = so_far.reshape(h, w)
    around = neighbour_sum(counts, replicate_edge=True)
    return count_bucket((2 * counts + (around + 1) // 2 + 2) // 4).reshape(-1)


def checker_levels(values: np.ndarray, grid: tuple[int, int], first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Level (1..CHECKER_LEVELS-1) of each `second`-half position from Σ|first-half neighbours|.

    `values` (h·w,) is the channel; only its `first`-half positions are read
    (the decoder knows no more when it needs these levels). Neighbours outside
    the grid count 0: repeating the edge would hand a border position its own,
    not yet decoded, value.
    """
    h, w = grid
    magnitude = np.zeros(h * w, dtype=np.int64)
    magnitude[first] = np.abs(values[first])
    around = neighbour_sum(magnitude.reshape(h, w), replicate_edge=False)
    return _LEVEL_LOOKUP[np.minimum(around.reshape(-1)[second], MAGNITUDE_THRESHOLDS[-1])]


def sign_orientation(symbols: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(C, h·w) of +1 and −1: −1 at the second-half positions whose 4 first-half
    neighbours in the same channel have signs summing below zero (neighbours
    outside the grid count 0), +1 everywhere else.

    Multiplying a latent by it gives the values a sign-aligned coder codes, and
    since it reads first-half symbols only, which it never changes, multiplying
    again restores the latent: the decoder applies it once the channel's first
    half is known.
    """
    return orientation_from_lean(sign_lean(symbols, grid))


def orientation_from_lean(lean: np.ndarray) -> np.ndarray:
    """`sign_orientation` from the symbols' `sign_lean`, for a caller that needs both."""
    return np.where(lean < 0, -1, 1)


def sign_lean(symbols: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(C, h·w): at every second-half position the sum of the signs of its 4
    first-half neighbours in the same channel (outside the grid 0); 0 on the first half."""
    symbols = np.asarray(symbols)
    h, w = grid
    first, second = checker_halves(grid)
    signs = np.zeros(symbols.shape, dtype=np.int64)
    signs[:, first] = np.sign(symbols[:, first])
    around = neighbour_sum(signs.reshape(signs.shape[0], h, w), replicate_edge=False).reshape(signs.shape)
    lean = np.zeros(symbols.shape, dtype=np.int64)
    lean[:, second] = around[:, second]
    return lean


def context_id(activity: np.ndarray, level: np.ndarray | int, prior: np.ndarray) -> np.ndarray:
    return (activity * CHECKER_LEVELS + level) * PRIOR_LEVELS + prior


def context_ids(symbols: np.ndarray, prior: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Context id of every symbol of a (C, h·w) latent on `grid`, as the decoder will see it.

    Used by the table fitting and to check the coder; the coder itself computes
    the same ids channel by channel and half by half while decoding.
    """
    symbols = np.asarray(symbols)
    prior = np.broadcast_to(prior, symbols.shape)
    first, second = checker_halves(grid)
    nonzero = np.cumsum(symbols != 0, axis=0)
    so_far = np.vstack([np.zeros((1, symbols.shape[1]), dtype=nonzero.dtype), nonzero[:-1]])
    ids = np.empty(symbols.shape, dtype=np.int64)
    for c in range(symbols.shape[0]):
        activity = activity_bucket(so_far[c], grid)
        ids[c, first] = context_id(activity[first], 0, prior[c, first])
        ids[c, second] = context_id(activity[second], checker_levels(symbols[c], grid, first, second), prior[c, second])
    return ids
