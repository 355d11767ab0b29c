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

Both are computed from decoded integers only, so the contexts, and with them the
tables the entropy coder is fed, are identical on every machine.
"""

from __future__ import annotations

import numpy as np

#: Upper-exclusive bounds of the nonzero-count buckets: 0, 1, 2, 3-4, 5-7, 8-12, 13-20, 21+.
COUNT_THRESHOLDS = np.array([1, 2, 3, 5, 8, 13, 21])
COUNT_BUCKETS = len(COUNT_THRESHOLDS) + 1
#: Previous-stage activity levels: 0, 1-2, 3-8, 9+ nonzero symbols in the covering block.
PRIOR_THRESHOLDS = np.array([1, 3, 9])
PRIOR_LEVELS = len(PRIOR_THRESHOLDS) + 1
CONTEXTS = COUNT_BUCKETS * PRIOR_LEVELS


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


def count_bucket(nonzero_so_far: np.ndarray) -> np.ndarray:
    return np.searchsorted(COUNT_THRESHOLDS, nonzero_so_far, side="right").astype(np.int64)


def context_ids(symbols: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Context id of every symbol of a (C, N) latent, as the decoder will see it.

    Used by the table fitting and to check the coder; the coder itself computes
    the same ids channel by channel while decoding.
    """
    nonzero = np.cumsum(symbols != 0, axis=0)
    so_far = np.vstack([np.zeros((1, symbols.shape[1]), dtype=nonzero.dtype), nonzero[:-1]])
    return count_bucket(so_far) * PRIOR_LEVELS + np.broadcast_to(prior, symbols.shape)
