"""A rate-distortion search over one stage's symbols (the encoder's effort, `encode --effort`).

The encoder's plain choice rounds each latent value to the nearest integer.
That need not minimise the stage's objective, rate + λ·distortion: the refine
CNN is nonlinear, the tables price some values far above their neighbours, and
a symbol's value moves the contexts of the symbols after it. The decoder does
not care which integers it gets, so an encoder may search, and every decoder
benefits without a format change.

The search here is greedy and cheap: from the rounded symbols, a few rounds of
single-symbol moves by ±1. Each move is ranked by an estimate of what it does
to the objective (the distortion's gradient through the stage decoder, the
linear synthesis' curvature, and its change of bits under the stage's real
integer tables in the symbol's current context, `bitstream.entropy.move_bits`).
A round takes the best-ranked move of each block and measures what each of
those really does before keeping it (`_apply_measured_block_moves`). That is
cheap because a symbol shapes only its own block and, through its kernel's
overlap and the refine CNN's 3×3 layers, a margin of one pixel per layer around
it (`StageConfig.reach`). While that is at most half a block, moves in blocks
two apart never touch the same pixel and four decoder passes (one per position
in a 2×2 cell of blocks) measure one move in every block; a stage that reaches
up to a whole block (stage 2 of the default model, `cdc-mix-19`) takes cells of
3×3 blocks and nine passes (`StageConfig.search_cell`). Squared error splits
exactly into those pixels; MS-SSIM does not, so each pass spreads the MS-SSIM
term's exact change over the pixels in the shape of its first-order expansion
over all five scales (`msssim_shape.py`; until session 55 the change of the
finest scale's SSIM map alone, which carries 4.5% of MS-SSIM's weight; the
five scales save 2.6% of the default model's bits at equal MS-SSIM on the 24
Kodak images, results/codec-study/msssim-shape.md). The kept moves are applied
together only if the objective, recomputed with the decoder and the tables'
exact information content, falls. So the search never ends worse than
rounding, by the measure it optimises.

Measuring matters: the estimate alone promised several times the fall of
distortion the moves delivered. The search before this one applied the
best-ranked share of all moves at once (halving the share until the objective
fell); measured blocks beat it for squared error alone and for the shipped
models' mixes with MS-SSIM (results/codec-study/symbol-search.md).

Why not the training-time Laplace prior as the rate: it prices symbols unlike
the context-coded tables, and a search led by it lost (results/codec-study/greedy-rdo.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from pytorch_msssim import ms_ssim

from . import msssim_shape
from .similarity import MS_SSIM_LAMBDA_SCALE, MS_SSIM_MIN_SIDE
from .stage import SYMBOL_LIMIT, ResidualStage

#: The single-symbol moves the search considers.
MOVES = (-1, 1)


@dataclass(frozen=True)
class StageRate:
    """The stage's real rate, for the search: `bits(q)` the tables' information
    content of symbols q; `move_bits(q)` each symbol's change of bits if it alone
    moved by each of MOVES, (len(MOVES), *q.shape) (+inf where it may not move)."""

    bits: Callable[[torch.Tensor], float]
    move_bits: Callable[[torch.Tensor], torch.Tensor]


def search_symbols(
    stage: ResidualStage,
    x: torch.Tensor,
    prev: torch.Tensor,
    scale: float,
    symbols: torch.Tensor,
    rate: StageRate,
    lam: float,
    picture: tuple[int, int],
    rounds: int,
    ms_ssim_share: float = 0.0,
) -> torch.Tensor:
    """Symbols for stage `stage` that code x (given `prev`) at no higher
    bits/pixel + lam·distortion than `symbols` (the rounded latent). The
    distortion is measured on the `picture` (height, width) part of the padded
    image: squared error on the 0..1 scale, mixed with MS_SSIM_LAMBDA_SCALE ×
    (1 − MS-SSIM) by `ms_ssim_share` as in training (`training.train.loss_distortion`;
    MS-SSIM only where the picture is large enough for it)."""
    height, width = picture
    pixels = height * width
    if min(height, width) < MS_SSIM_MIN_SIDE:
        ms_ssim_share = 0.0
    target = x[..., :height, :width]

    def reconstruct(q: torch.Tensor) -> torch.Tensor:
        return stage.synthesise(q, prev, scale)[..., :height, :width]

    def term_of(similarity: torch.Tensor) -> torch.Tensor:
        """The MS-SSIM part of the distortion, before λ (as in training), from MS-SSIM."""
        return ms_ssim_share * MS_SSIM_LAMBDA_SCALE * (1 - similarity)

    def similarity_term(recon: torch.Tensor) -> torch.Tensor:
        return term_of(ms_ssim(recon.clamp(0, 1), target, data_range=1.0))

    def distortion(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(λ·distortion of the stage's reconstruction from q, q as the leaf of its graph, the
        reconstruction): a trial's forward pass serves the next round's gradient once it is accepted."""
        leaf = q.detach().requires_grad_(True)
        with torch.enable_grad():
            recon = reconstruct(leaf)
            value = torch.zeros((), dtype=recon.dtype)
            if ms_ssim_share < 1:  # a term with no weight is not computed, as in training
                value = value + (1 - ms_ssim_share) * ((recon - target) ** 2).mean()
            if ms_ssim_share:
                value = value + similarity_term(recon)
            return lam * value, leaf, recon.detach()

    def objective(q: torch.Tensor) -> tuple[float, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        measured = distortion(q)
        return rate.bits(q) / pixels + float(measured[0].detach()), measured

    step = stage.config.step * scale
    norms = (stage.transform.synthesis.weight.detach() ** 2).sum(dim=(1, 2, 3)).view(1, -1, 1, 1)
    curvature = lam * step * step * norms / (3 * pixels)
    squared_weight = lam * (1 - ms_ssim_share) / target.numel()
    best = symbols
    current, (value, leaf, recon) = objective(best)
    for _ in range(rounds):
        (gradient,) = torch.autograd.grad(value, leaf)
        gain, move, move_rate = _best_moves(gradient, curvature, rate.move_bits(best) / pixels)
        before_squared = (recon - target) ** 2 if ms_ssim_share < 1 else None
        if ms_ssim_share:
            with torch.no_grad():
                before_maps = msssim_shape.scale_maps(recon.clamp(0, 1), target)
                before_term = float(lam * term_of(msssim_shape.value(before_maps)))

        @torch.no_grad()
        def change(q: torch.Tensor, before_squared: torch.Tensor | None = before_squared) -> torch.Tensor:
            """Per pixel (H, W): λ·distortion of q's reconstruction less the current one's
            (the MS-SSIM term's exact change spread in the shape of its first-order expansion)."""
            after = reconstruct(q)
            per_pixel = after.new_zeros(after.shape[-2:])
            if ms_ssim_share < 1:  # as in `distortion`: a term with no weight is not computed
                per_pixel = per_pixel + (squared_weight * ((after - target) ** 2 - before_squared)).sum(dim=(0, 1))
            if ms_ssim_share:
                after_maps = msssim_shape.scale_maps(after.clamp(0, 1), target)
                shape = msssim_shape.loss_shape(before_maps, after_maps, after.shape[-2:])  # where 1 − MS-SSIM rose
                exact, total = float(lam * term_of(msssim_shape.value(after_maps))) - before_term, float(shape.sum())
                per_pixel = per_pixel + shape * (exact / total if exact * total > 0 else 0.0)
            return per_pixel

        improved = _apply_measured_block_moves(best, gain, move, move_rate, current, objective, change, stage.config.block, stage.config.search_cell)
        if improved is None:
            break
        best, current, (value, leaf, recon) = improved
    return best


def _best_moves(gradient: torch.Tensor, curvature: torch.Tensor, move_rates: torch.Tensor):
    """(estimated change of the objective, move, its change of bits/pixel) of each symbol's
    best move among MOVES (`move_rates`: bits/pixel of each); move 0 and gain 0 where
    none is estimated to help."""
    gain = torch.zeros_like(gradient)
    move = torch.zeros_like(gradient)
    move_rate = torch.zeros_like(gradient)
    for delta, bits in zip(MOVES, move_rates):
        estimate = gradient * delta + curvature * delta * delta + bits
        better = estimate < gain
        gain = torch.where(better, estimate, gain)
        move = torch.where(better, torch.full_like(gain, float(delta)), move)
        move_rate = torch.where(better, bits, move_rate)
    return gain, move, move_rate


def _apply_measured_block_moves(symbols, gain, move, move_rate, current, objective, change, block: int, cell: int = 2):
    """(symbols with each block's best-ranked move applied where it measures as a gain,
    their objective, its measured parts) if the objective falls below `current`; None otherwise.

    `change(q)` is the per-pixel change of λ·distortion from the current symbols to q.
    Each of cell² passes moves the blocks at one position of every cell × cell
    square of blocks; a pixel's change is charged to the moved block whose square,
    centred on it, holds the pixel, which reaches (cell − 1)/2 blocks beyond it:
    all that the move changes while the stage reaches no further
    (`StageConfig.search_cell` picks the cell for the stage's reach). The rate is `move_bits`' (each symbol in its
    current context); the objective of the whole trial counts the contexts' changes too.
    """
    lh, lw = symbols.shape[-2:]
    best_gain, channel = gain.min(dim=1, keepdim=True)
    chosen = torch.zeros_like(symbols, dtype=torch.bool).scatter_(1, channel, True) & (best_gain < 0)
    kept = torch.zeros_like(chosen)
    for row in range(cell):
        for col in range(cell):
            position = torch.zeros(lh, lw, dtype=torch.bool)
            position[row::cell, col::cell] = True
            trying = chosen & position
            if not trying.any():
                continue
            moved = (symbols + move * trying).clamp(-SYMBOL_LIMIT, SYMBOL_LIMIT)
            distortion = _sum_around_blocks(change(moved), block, row, col, (lh, lw), cell)
            kept |= trying & (distortion + (move_rate * trying).sum(dim=1)[0] < 0)
    if not kept.any():
        return None
    trial = (symbols + move * kept).clamp(-SYMBOL_LIMIT, SYMBOL_LIMIT)
    value, measured = objective(trial)
    return (trial, value, measured) if value < current else None


def _sum_around_blocks(per_pixel: torch.Tensor, block: int, row: int, col: int, grid: tuple[int, int], cell: int = 2) -> torch.Tensor:
    """(lh, lw): at block (row + cell·i, col + cell·j), the sum of `per_pixel` (H, W; the
    picture, which the grid of blocks may overhang) over the cell × cell blocks centred
    on it; zero elsewhere."""
    lh, lw = grid
    period, margin = cell * block, (cell - 1) * block // 2
    top, left = row * block - margin, col * block - margin  # where the first cell starts (may be < 0)
    rows, cols = len(range(row, lh, cell)), len(range(col, lw, cell))
    canvas = per_pixel.new_zeros(rows * period, cols * period)
    source = per_pixel[max(0, top) :, max(0, left) :]
    down, right = max(0, -top), max(0, -left)
    source = source[: canvas.shape[0] - down, : canvas.shape[1] - right]
    canvas[down : down + source.shape[0], right : right + source.shape[1]] = source
    sums = per_pixel.new_zeros(lh, lw)
    sums[row::cell, col::cell] = canvas.reshape(rows, period, cols, period).sum(dim=(1, 3))
    return sums
