"""Things fitted from data rather than learned by gradient: PCA bases and symbol tables.

- `pca_basis`: the orthonormal basis a stage's block transform starts from,
  the principal components of the blocks that stage will code (the original
  image for stage 1, the previous stages' residual after that).
- `fit_tables`: the integer tables the entropy coder uses, from histograms of
  the symbols the trained stage really produces on training images, and which
  channels the coder predicts from their neighbours (`bitstream.prediction`).
"""

from __future__ import annotations

import numpy as np
import torch

from ...bitstream import SymbolTables, tables_from_counts
from ...bitstream.contexts import CONTEXTS, context_ids, sign_orientation
from ...bitstream.entropy import TABLE_TOTAL
from ...bitstream.prediction import PREDICTION_CONTEXTS, prediction_contexts

#: A table row spans at most this many values; rarer values use the escape code.
MAX_TABLE_WIDTH = 2048
#: Pseudo-observations, shaped like the channel's overall histogram, added to every context row.
BACKOFF = 4.0
#: A channel is predicted when that codes its training symbols in at most this share
#: of the bits its context tables need, saving at least PREDICTION_MIN_SAVING bits
#: per symbol: a clear margin, because both are measured on the symbols the
#: tables were fitted to, and a predicted channel costs the decoder a Python step
#: per symbol, which nearly-all-zero channels (where the smaller table set can
#: win in-sample by a sliver) would not repay.
PREDICTION_GAIN = 0.8
PREDICTION_MIN_SAVING = 0.1


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
    symbol_batches: list[np.ndarray],
    prior_batches: list[np.ndarray] | None = None,
    grids: list[tuple[int, int]] | None = None,
    sign_aligned: bool = False,
) -> SymbolTables:
    """Context-dependent integer tables from (C, N) symbol arrays seen on training data.

    `prior_batches` holds each batch's prior levels, (C, N) like its symbols
    (None for a first stage); `grids` each batch's latent grid (h, w), h·w = N
    (None: each batch is one row). Each (channel, context) row is its histogram plus
    BACKOFF pseudo-observations spread like the channel's overall histogram, so
    rarely seen contexts fall back to the channel's statistics. With
    `sign_aligned` the context rows are fitted on the symbols as a sign-aligned
    coder codes them (`contexts.sign_orientation`), which lets a row favour the
    sign its neighbours share; predicted channels are chosen as without it and
    fitted on the symbols as they are.
    """
    symbols = np.concatenate(symbol_batches, axis=1).astype(np.int64)
    if prior_batches is None:
        prior_batches = [np.zeros(b.shape, dtype=np.int64) for b in symbol_batches]
    if grids is None:
        grids = [(1, b.shape[1]) for b in symbol_batches]
    contexts = np.concatenate([context_ids(b, p, g) for b, p, g in zip(symbol_batches, prior_batches, grids)], axis=1)
    tables = _context_tables(symbols, contexts, CONTEXTS)
    # Which channels are predicted is decided against plain context coding, with or
    # without alignment: aligned contexts code a block-mean channel in fewer bits than
    # plain ones, enough to miss PREDICTION_GAIN, but still in more than prediction
    # does (stage 1 of cdc-mix-17 at levels 2-4 lost 1-2% of its bits that way).
    context_bits = _channel_bits(tables, symbols, contexts)
    if sign_aligned:
        coded = np.concatenate([b * sign_orientation(b, g) for b, g in zip(symbol_batches, grids)], axis=1)
        fitted = _context_tables(coded, contexts, CONTEXTS)
        tables = SymbolTables(fitted.offsets, fitted.sizes, fitted.pmfs, CONTEXTS, sign_aligned=True)
        del coded
    del contexts
    # Each batch's prediction and context, all channels at once.
    predictions, prediction_ids = zip(
        *(prediction_contexts(b.reshape(b.shape[0], *g), p) for b, p, g in zip(symbol_batches, prior_batches, grids))
    )
    residuals = symbols - np.concatenate(predictions, axis=1)
    del symbols, predictions
    prediction_ids = np.concatenate(prediction_ids, axis=1)
    candidates = _context_tables(residuals, prediction_ids, PREDICTION_CONTEXTS)
    saving = context_bits - _channel_bits(candidates, residuals, prediction_ids)
    predicted = np.flatnonzero((saving >= (1 - PREDICTION_GAIN) * context_bits) & (saving >= PREDICTION_MIN_SAVING * residuals.shape[1]))
    if predicted.size == 0:
        return tables
    chosen = _context_tables(residuals[predicted], prediction_ids[predicted], PREDICTION_CONTEXTS)
    return SymbolTables(
        tables.offsets, tables.sizes, tables.pmfs, CONTEXTS, predicted=tuple(predicted.tolist()), residuals=chosen,
        sign_aligned=sign_aligned,
    )


def _context_tables(symbols: np.ndarray, contexts: np.ndarray, count: int) -> SymbolTables:
    """Tables for (C, N) symbols, each in one of `count` contexts (C, N), with the back-off of `fit_tables`."""
    channels = symbols.shape[0]
    lows, highs = symbols.min(axis=1), symbols.max(axis=1)
    # Clip each channel's range around its median so one outlier cannot blow up the table.
    centre = np.median(symbols, axis=1).astype(np.int64)
    lows = np.maximum(lows, centre - MAX_TABLE_WIDTH // 2)
    highs = np.minimum(highs, centre + MAX_TABLE_WIDTH // 2 - 1)
    sizes = (highs - lows + 1).astype(np.int32)
    width = int(sizes.max())
    counts = np.zeros((channels * count, width), dtype=np.float64)
    for c in range(channels):
        idx = symbols[c] - lows[c]
        keep = (idx >= 0) & (idx < sizes[c])
        flat = contexts[c][keep] * width + idx[keep]
        hist = np.bincount(flat, minlength=count * width).reshape(count, width).astype(np.float64)
        marginal = hist.sum(axis=0)
        counts[c * count : (c + 1) * count] = hist + BACKOFF * marginal / max(marginal.sum(), 1.0)
    # Each channel's rows cover only its own observed range: spare entries would
    # each take the minimum frequency away from the values that do occur.
    return tables_from_counts(counts, np.repeat(lows, count).astype(np.int32), sizes=np.repeat(sizes, count), contexts=count)


def _channel_bits(tables: SymbolTables, symbols: np.ndarray, contexts: np.ndarray) -> np.ndarray:
    """Ideal bits of each channel's (C, N) symbols under `tables` in the given contexts (escapes at 16 bits)."""
    bits = np.zeros(symbols.shape[0])
    for c in range(symbols.shape[0]):
        rows = c * tables.contexts + contexts[c]
        idx = symbols[c] - tables.offsets[rows]
        escaped = (idx < 0) | (idx >= tables.sizes[rows])
        idx = np.where(escaped, tables.sizes[rows], idx)
        bits[c] = 16.0 * escaped.sum() - np.log2(tables.pmfs[rows, idx] / TABLE_TOTAL).sum()
    return bits
