"""The two figures: the same held-out faces through every model, and VAE prior samples.

Both are image grids with a title per column or row; matplotlib (headless Agg backend)
draws the titles, the pixels are shown unscaled and unsmoothed.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def _hwc(img: torch.Tensor):
    return img.clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def reconstruction_grid(originals: torch.Tensor, columns: list[tuple[str, torch.Tensor]],
                        path: Path, title: str = "") -> None:
    """Rows are faces; the first column the originals, then one column per model."""
    n_rows, n_cols = len(originals), 1 + len(columns)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.45 * n_cols, 1.5 * n_rows + 0.6),
                             squeeze=False)
    cols = [("original", originals)] + columns
    for j, (name, imgs) in enumerate(cols):
        for i in range(n_rows):
            ax = axes[i][j]
            ax.imshow(_hwc(imgs[i]), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sample_grid(rows: list[tuple[str, torch.Tensor]], path: Path, title: str = "") -> None:
    """One row of prior samples per model."""
    n_rows, n_cols = len(rows), max(len(s) for _, s in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.4 * n_cols, 1.55 * n_rows + 0.5),
                             squeeze=False)
    for i, (name, imgs) in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(imgs):
                ax.imshow(_hwc(imgs[j]), interpolation="nearest")
            if j == 0:
                ax.set_ylabel(name, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
