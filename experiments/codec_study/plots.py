"""Two figures of the codec study: the cascade ablation, and quality against training time."""

from __future__ import annotations

from pathlib import Path

from ...bench.curves import upper_envelope
from .report import CURVE_RATE, reading


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_ablation(curves: dict[str, list[dict]], target: Path) -> None:
    """PSNR against bpp: each variant's upper envelope as a line, its other points as dots."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, points in curves.items():
        env = upper_envelope(points, "psnr")
        line = ax.plot([p["bpp"] for p in env], [p["psnr"] for p in env], marker="o", label=name)[0]
        ax.plot([p["bpp"] for p in points], [p["psnr"] for p in points], "o", mfc="none", color=line.get_color(), alpha=0.5)
    ax.set_xlabel("bits per pixel (file bytes)")
    ax.set_ylabel("PSNR (dB, RGB)")
    ax.set_title("Kodak: does each cascade stage pay for its bits?")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(target, dpi=120)
    plt.close(fig)


def plot_training(rows: list[dict], curves: dict[str, list[dict]], target: Path) -> None:
    """PSNR at CURVE_RATE against training steps: the plain recipe as circles, variants as squares."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for index, row in enumerate(rows):
        value = reading(curves[row["name"]], "psnr", CURVE_RATE)
        if value is None:
            continue
        plain = row["name"].startswith(("base", "shipped"))
        ax.plot(row["steps"], value, "o" if plain else "s", color="C0" if plain else "C1")
        ax.annotate(row["name"], (row["steps"], value), fontsize=7, xytext=(6, 10 - 7 * (index % 4)), textcoords="offset points")
    ax.set_xlabel("training steps (batch 16 of 128×128 crops; about 1 step/s on one CPU core)")
    ax.set_ylabel(f"Kodak PSNR at {CURVE_RATE} bpp (dB)")
    ax.set_title("Stage 1: quality against training time")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(target, dpi=120)
    plt.close(fig)
