"""Things fitted from data rather than learned by gradient: PCA bases and symbol tables.

- `pca_basis`: the orthonormal basis a stage's block transform starts from,
  the principal components of the blocks that stage will code (the original
  image for stage 1, the previous stages' residual after that).
- `fit_tables`: the integer tables the entropy coder uses, from histograms of
  the symbols the trained stage really produces on training images.
"""

from __future__ import annotations

import numpy as np
import torch

from ...bitstream import SymbolTables, tables_from_counts
from ...bitstream.contexts import CONTEXTS, context_ids

#: A table row spans at most this many values; rarer values use the escape code.
MAX_TABLE_WIDTH = 2048
#: Pseudo-observations, shaped like the channel's overall histogram, added to every context row.
BACKOFF = 4.0


def pca_basis(blocks: torch.Tensor) -> torch.Tensor:
    """Eigenvectors of the (uncentred) second moment of `blocks` (N, D), strongest first."""
    blocks = blocks.double()
    moment = blocks.T @ blocks / blocks.shape[0]
    _, vectors = torch.linalg.eigh(moment)
    return vectors.flip(1).float()


def extract_blocks(images: torch.Tensor, block: int) -> torch.Tensor:
    """(N, C, H, W) with H, W multiples of `block` -> (N·blocks, C·block·block), conv-kernel order."""
    n, c, h, w = images.shape
    x = images.reshape(n, c, h // block, block, w // block, block)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(-1, c * block * block)


def fit_tables(
    symbol_batches: list[np.ndarray], prior_batches: list[np.ndarray] | None = None, grids: list[tuple[int, int]] | None = None
) -> SymbolTables:
    """Context-dependent integer tables from (C, N) symbol arrays seen on training data.

    `prior_batches` holds each batch's prior levels, (C, N) like its symbols
    (None for a first stage); `grids` each batch's latent grid (h, w), h·w = N
    (None: each batch is one row). Each (channel, context) row is its histogram plus
    BACKOFF pseudo-observations spread like the channel's overall histogram, so
    rarely seen contexts fall back to the channel's statistics.
    """
    symbols = np.concatenate(symbol_batches, axis=1).astype(np.int64)
    if prior_batches is None:
        prior_batches = [np.zeros(b.shape, dtype=np.int64) for b in symbol_batches]
    if grids is None:
        grids = [(1, b.shape[1]) for b in symbol_batches]
    contexts = np.concatenate([context_ids(b, p, g) for b, p, g in zip(symbol_batches, prior_batches, grids)], axis=1)
    channels = symbols.shape[0]
    lows, highs = symbols.min(axis=1), symbols.max(axis=1)
    # Clip each channel's range around its median so one outlier cannot blow up the table.
    centre = np.median(symbols, axis=1).astype(np.int64)
    lows = np.maximum(lows, centre - MAX_TABLE_WIDTH // 2)
    highs = np.minimum(highs, centre + MAX_TABLE_WIDTH // 2 - 1)
    sizes = (highs - lows + 1).astype(np.int32)
    width = int(sizes.max())
    counts = np.zeros((channels * CONTEXTS, width), dtype=np.float64)
    for c in range(channels):
        idx = symbols[c] - lows[c]
        keep = (idx >= 0) & (idx < sizes[c])
        flat = contexts[c][keep] * width + idx[keep]
        hist = np.bincount(flat, minlength=CONTEXTS * width).reshape(CONTEXTS, width).astype(np.float64)
        marginal = hist.sum(axis=0)
        counts[c * CONTEXTS : (c + 1) * CONTEXTS] = hist + BACKOFF * marginal / max(marginal.sum(), 1.0)
    # Each channel's rows cover only its own observed range: spare entries would
    # each take the minimum frequency away from the values that do occur.
    return tables_from_counts(
        counts, np.repeat(lows, CONTEXTS).astype(np.int32), sizes=np.repeat(sizes, CONTEXTS), contexts=CONTEXTS
    )
