"""Seed statistics: mean ± std per algorithm, and ΔSSIM against AE, paired by seed.

The paper's differences are a few thousandths of SSIM from single runs. Here
each ΔSSIM is taken seed by seed (the algorithm minus AE trained with the same
seed, which for AE-based cascades share the very same stage 1), and a sign is
claimed only where a two-sided paired t-test at 5% rejects a zero mean. With 3
seeds that needs |mean| > 4.30 * std / sqrt(3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .paper_values import paper_delta, paper_ssim
from .runner import RunResult


@dataclass
class Row:
    algorithm: str
    seeds: int
    ssim_mean: float
    ssim_std: float
    delta_mean: float
    delta_std: float
    #: "+" or "-" where the paired t-test says ΔSSIM is not zero, "" otherwise
    delta_sign: str
    ssim_q_mean: float
    ssim_q_std: float
    bits_mean: float
    bits_std: float
    bits_single_mean: float
    stage_ssim_mean: list[float]
    stage_psnr_mean: list[float]
    paper_ssim: float | None
    paper_delta: float | None


def _mean_std(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else float("nan")


def delta_sign(deltas: list[float], alpha: float = 0.05) -> str:
    """'+'/'-' if the paired t-test rejects ΔSSIM = 0 at level alpha, else ''."""
    d = np.asarray(deltas, dtype=np.float64)
    if len(d) < 2:
        return ""
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0.0:
        return "" if mean == 0.0 else ("+" if mean > 0 else "-")
    t = abs(mean) / (sd / math.sqrt(len(d)))
    if t <= stats.t.ppf(1.0 - alpha / 2.0, len(d) - 1):
        return ""
    return "+" if mean > 0 else "-"


def summarise(dataset: str, runs: list[RunResult]) -> list[Row]:
    """One row per algorithm, in the order the runs first appear."""
    ae = {r.seed: r.stage_ssim[-1] for r in runs if r.algorithm == "AE"}
    rows = []
    for name in dict.fromkeys(r.algorithm for r in runs):
        mine = [r for r in runs if r.algorithm == name]
        final = [r.stage_ssim[-1] for r in mine]
        deltas = [r.stage_ssim[-1] - ae[r.seed] for r in mine if r.seed in ae]
        stages = np.mean([r.stage_ssim for r in mine], axis=0).tolist()
        s_mean, s_std = _mean_std(final)
        d_mean, d_std = _mean_std(deltas) if deltas else (float("nan"), float("nan"))
        q_mean, q_std = _mean_std([r.stage_ssim_quantized[-1] for r in mine])
        b_mean, b_std = _mean_std([r.rate.bits_per_image for r in mine])
        rows.append(
            Row(
                algorithm=name,
                seeds=len(mine),
                ssim_mean=s_mean,
                ssim_std=s_std,
                delta_mean=d_mean,
                delta_std=d_std,
                delta_sign=delta_sign(deltas) if name != "AE" else "",
                ssim_q_mean=q_mean,
                ssim_q_std=q_std,
                bits_mean=b_mean,
                bits_std=b_std,
                bits_single_mean=float(np.mean([r.rate.bits_per_image_single for r in mine])),
                stage_ssim_mean=stages,
                stage_psnr_mean=np.mean([r.stage_psnr for r in mine], axis=0).tolist(),
                paper_ssim=paper_ssim(dataset, name),
                paper_delta=paper_delta(dataset, name),
            )
        )
    return rows
