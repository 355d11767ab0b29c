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

#: A table row spans at most this many values; rarer values use the escape code.
MAX_TABLE_WIDTH = 2048


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


def fit_tables(symbol_batches: list[np.ndarray]) -> SymbolTables:
    """Integer tables from (C, N) int symbol arrays seen on training data."""
    symbols = np.concatenate(symbol_batches, axis=1).astype(np.int64)
    channels = symbols.shape[0]
    lows, highs = symbols.min(axis=1), symbols.max(axis=1)
    # Clip each channel's range around its median so one outlier cannot blow up the table.
    centre = np.median(symbols, axis=1).astype(np.int64)
    lows = np.maximum(lows, centre - MAX_TABLE_WIDTH // 2)
    highs = np.minimum(highs, centre + MAX_TABLE_WIDTH // 2 - 1)
    width = int((highs - lows).max()) + 1
    counts = np.zeros((channels, width), dtype=np.float64)
    for c in range(channels):
        idx = symbols[c] - lows[c]
        idx = idx[(idx >= 0) & (idx < width)]
        counts[c] = np.bincount(idx, minlength=width)[:width]
    # Each channel's row covers only its own observed range: spare entries would
    # each take the minimum frequency away from the values that do occur.
    return tables_from_counts(counts, lows.astype(np.int32), sizes=(highs - lows + 1).astype(np.int32))
