"""How far one symbol's change spreads in a stage's image.

The encoder's symbol search measures a move in every other block in one
decoder pass, which holds while a symbol changes no pixel more than half a
block beyond its own block, or in every third block where a stage reaches up to
a whole block (codec/symbol_search.py, StageConfig.search_cell). Tests of the search and of
deeper refine CNNs check that bound with these helpers.
"""

from __future__ import annotations

import torch

#: The block (row and column on the latent grid) whose symbol the helpers move.
MOVED_BLOCK = 2


def one_move_change(stage, x: torch.Tensor, prev: torch.Tensor, channel: int, delta: int) -> torch.Tensor:
    """(H, W): how much the stage's image changes, summed over colours, when the symbol of
    `channel` at block (MOVED_BLOCK, MOVED_BLOCK) moves by `delta` from rounding."""
    with torch.no_grad():
        q = stage.quantize(stage.analyse(x, prev))
        moved = q.clone()
        moved[0, channel, MOVED_BLOCK, MOVED_BLOCK] += delta
        return (stage.synthesise(moved, prev) - stage.synthesise(q, prev)).abs().sum(dim=(0, 1))


def half_block_around(change: torch.Tensor, block: int, inset: int = 0) -> torch.Tensor:
    """Mask of the pixels within half a block of the moved block, less `inset` pixels at the rim."""
    return pixels_around(change, block, block // 2 - inset)


def pixels_around(change: torch.Tensor, block: int, margin: int) -> torch.Tensor:
    """Mask of the moved block and the pixels within `margin` of it."""
    low, high = MOVED_BLOCK * block - margin, (MOVED_BLOCK + 1) * block + margin
    mask = torch.zeros_like(change, dtype=torch.bool)
    mask[low:high, low:high] = True
    return mask
