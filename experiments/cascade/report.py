"""Outputs of an experiment: the printed table, the JSON record and the PNG grid."""

from __future__ import annotations

import json
import math
import platform
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .algorithms import BY_NAME
from .evaluate import to_pixels
from .runner import ExperimentOutput, ExperimentSpec, RunResult
from .summary import Row

PAPER_EPOCHS = 100


def _fmt(value: float | None, digits: int = 5, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _pm(mean: float, std: float, digits: int = 5, signed: bool = False) -> str:
    return f"{_fmt(mean, digits, signed)} ± {_fmt(std, digits)}"


def format_table(dataset: str, spec: ExperimentSpec, rows: list[Row]) -> str:
    """The paper's table layout (algorithm, SSIM, ΔSSIM vs AE) with ours and rate added."""
    seeds = len(spec.seeds)
    lines = [
        f"Cascade-decoder autoencoders on {dataset}: test SSIM, mean ± std over {seeds} seed(s), "
        f"{spec.epochs} epoch(s) per stage (paper: {PAPER_EPOCHS}, single run)",
    ]
    if spec.epochs < PAPER_EPOCHS:
        lines.append(f"NOTE: trained {spec.epochs} epochs per stage, fewer than the paper's {PAPER_EPOCHS}.")
    lines.append(
        f"sig: sign of ΔSSIM where a paired t-test over seeds rejects 0 at 5%. "
        f"bits: latent quantized with step {spec.step_scale:g}·std per channel, coded with cdcodec.bitstream "
        f"(whole test split in one payload); SSIM@q: final stage decoded from that quantized latent."
    )
    header = f"{'Algorithm':<9} {'SSIM (ours)':>19} {'ΔSSIM (ours)':>20} {'sig':>3} {'SSIM paper':>10} {'ΔSSIM paper':>11} {'bits/img':>14} {'SSIM@q':>19}"
    lines += [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.algorithm:<9} {_pm(r.ssim_mean, r.ssim_std):>19} {_pm(r.delta_mean, r.delta_std, signed=True):>20} "
            f"{r.delta_sign:>3} {_fmt(r.paper_ssim):>10} {_fmt(r.paper_delta, signed=True):>11} "
            f"{_pm(r.bits_mean, r.bits_std, 1):>14} {_pm(r.ssim_q_mean, r.ssim_q_std):>19}"
        )
    lines += ["", "Per stage, mean over seeds (stage 1 -> 2 -> 3): test SSIM | test PSNR in dB (8-bit pixels, whole split)"]
    for r in rows:
        ssim = " -> ".join(f"{v:.4f}" for v in r.stage_ssim_mean)
        psnr = " -> ".join(f"{v:.2f}" for v in r.stage_psnr_mean)
        lines.append(f"{r.algorithm:<9} {ssim} | {psnr}")
    return "\n".join(lines)


def _clean(obj):
    """JSON-safe copy: NaN becomes null, numpy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if math.isnan(float(obj)) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_json(
    path: Path, dataset: str, spec: ExperimentSpec, runs: list[RunResult], rows: list[Row], command: str, extra: dict | None = None
) -> None:
    """The full record of a run (settings, summary rows, every run); `extra` adds fields (a merge's parts)."""
    record = {
        "dataset": dataset,
        "command": command,
        "epochs_per_stage": spec.epochs,
        "paper_epochs": PAPER_EPOCHS,
        "seeds": spec.seeds,
        "algorithms": [a.name for a in spec.algorithms],
        "config": asdict(spec.cfg),
        "quant_step_scale": spec.step_scale,
        "device": spec.device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "paper_source": "paper Tab. 4 (MNIST), Tab. 6 (FMNIST), Tab. 7 breast column (MedMNIST)",
        "summary": [asdict(r) for r in rows],
        "runs": [asdict(r) for r in runs],
        **(extra or {}),
    }
    path.write_text(json.dumps(_clean(record), indent=2) + "\n")


def _has_base_row(name: str, out: ExperimentOutput) -> bool:
    """True when `name` is a cascade whose base model is also in the grid."""
    alg = BY_NAME[name]
    return alg.cascade is not None and alg.base_name in out.grid_stages


def write_grid(path: Path, out: ExperimentOutput) -> None:
    """Originals on top, then one row per (algorithm, stage) of the first seed.

    A cascade's stage 1 is its base model, already shown on the base's row, so
    cascades only get rows for their later stages.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["original"]
    rows = [to_pixels(out.grid_originals)]
    for name, stages in out.grid_stages.items():
        for s, images in enumerate(stages, start=1):
            if s == 1 and _has_base_row(name, out):
                continue
            labels.append(f"{name} stage {s}")
            rows.append(to_pixels(images))
    mosaic = np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0)
    fig, ax = plt.subplots(figsize=(0.45 * rows[0].shape[0] + 1.8, 0.45 * len(rows) + 0.4))
    ax.imshow(mosaic, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_yticks([28 * i + 14 for i in range(len(rows))], labels, fontsize=7)
    ax.set_xticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
