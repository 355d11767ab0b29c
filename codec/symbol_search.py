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
integer tables in the symbol's current context, `bitstream.entropy.move_bits`);
the best-ranked share of the moves is applied only if the objective, recomputed
with the decoder and the tables' exact information content, falls. So the
search never ends worse than rounding, by the measure it optimises.

Why not the training-time Laplace prior as the rate: it prices symbols unlike
the context-coded tables, and a search led by it lost (results/codec-study/greedy-rdo.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from pytorch_msssim import ms_ssim

from .similarity import MS_SSIM_LAMBDA_SCALE, MS_SSIM_MIN_SIDE
from .stage import SYMBOL_LIMIT, ResidualStage

#: The single-symbol moves the search considers.
MOVES = (-1, 1)

#: The share of the improving moves (best-ranked first) the first round tries first:
#: in an encode of kodim01, all of them, or half, never lowered the objective
#: (results/codec-study/symbol-search.md), because the moves interact.
FIRST_SHARE = 1 / 4
#: The smallest share of the improving moves a round tries before giving up.
SMALLEST_SHARE = 1 / 32


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

    def distortion(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(λ·distortion of the stage's reconstruction from q, q as the leaf of its graph):
        a trial's forward pass serves the next round's gradient once it is accepted."""
        leaf = q.detach().requires_grad_(True)
        with torch.enable_grad():
            recon = stage.synthesise(leaf, prev, scale)[..., :height, :width]
            value = torch.zeros((), dtype=recon.dtype)
            if ms_ssim_share < 1:  # a term with no weight is not computed, as in training
                value = value + (1 - ms_ssim_share) * ((recon - x[..., :height, :width]) ** 2).mean()
            if ms_ssim_share:
                similarity = ms_ssim(recon.clamp(0, 1), x[..., :height, :width], data_range=1.0)
                value = value + ms_ssim_share * MS_SSIM_LAMBDA_SCALE * (1 - similarity)
            return lam * value, leaf

    def objective(q: torch.Tensor) -> tuple[float, tuple[torch.Tensor, torch.Tensor]]:
        measured = distortion(q)
        return rate.bits(q) / pixels + float(measured[0].detach()), measured

    step = stage.config.step * scale
    norms = (stage.transform.synthesis.weight.detach() ** 2).sum(dim=(1, 2, 3)).view(1, -1, 1, 1)
    curvature = lam * step * step * norms / (3 * pixels)
    best = symbols
    current, (value, leaf) = objective(best)
    share = FIRST_SHARE
    for _ in range(rounds):
        (gradient,) = torch.autograd.grad(value, leaf)
        gain = torch.zeros_like(best)
        move = torch.zeros_like(best)
        for delta, bits in zip(MOVES, rate.move_bits(best)):
            estimate = gradient * delta + curvature * delta * delta + bits / pixels
            better = estimate < gain
            gain = torch.where(better, estimate, gain)
            move = torch.where(better, torch.full_like(best, float(delta)), move)
        improved = _apply_best_share(best, gain, move, current, objective, share)
        if improved is None:
            break
        best, current, (value, leaf), share = improved
    return best


def _apply_best_share(symbols, gain, move, current, objective, share: float):
    """(symbols with the best-ranked share of the moves applied, their objective, its
    measured parts, the share) for the largest share, from `share` down by halves to
    SMALLEST_SHARE, whose objective falls below `current`; None when none does.

    The moves interact (neighbouring symbols shape the same pixels and each
    other's contexts), so applying all that look good at once loses; a round
    starts at the share its predecessor kept, because each trial costs a
    decoder pass and the share that pays only shrinks as the symbols improve.
    """
    candidates = gain[move != 0]
    while candidates.numel() and share >= SMALLEST_SHARE:
        # The order statistic torch.quantile would interpolate from (it refuses more than
        # 2^24 values; a large photo's stage has more candidates than that).
        threshold = torch.kthvalue(candidates, int((candidates.numel() - 1) * share) + 1).values if share < 1 else 0.0
        trial = (symbols + move * ((move != 0) & (gain <= threshold))).clamp(-SYMBOL_LIMIT, SYMBOL_LIMIT)
        value, measured = objective(trial)
        if value < current:
            return trial, value, measured, share
        share /= 2
    return None
