"""The two figures: the same held-out faces through every model, and VAE prior samples.

Each figure is one mosaic (images pasted into a single array with white gutters) drawn
in a single matplotlib axes with text labels: a grid of dozens of axes costs seconds to
lay out, which the tests would pay on every run.  Pixels are shown unsmoothed.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

GUTTER = 4


def mosaic(grid: list[list[torch.Tensor | None]]) -> np.ndarray:
    """Rows of (3, H, W) images in [0, 1] -> one (rows*H, cols*W, 3) array, white between."""
    h, w = next(img for row in grid for img in row if img is not None).shape[1:]
    n_rows, n_cols = len(grid), max(len(r) for r in grid)
    out = np.ones((n_rows * (h + GUTTER) - GUTTER, n_cols * (w + GUTTER) - GUTTER, 3))
    for i, row in enumerate(grid):
        for j, img in enumerate(row):
            if img is not None:
                y, x = i * (h + GUTTER), j * (w + GUTTER)
                out[y:y + h, x:x + w] = img.clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    return out


def _draw(canvas: np.ndarray, col_labels: list[str], row_labels: list[str], cell: tuple[int, int],
          path: Path, title: str, scale: float) -> None:
    h, w = cell
    height, width = canvas.shape[:2]
    left = 1.1 if row_labels else 0.1
    top = 0.75 if col_labels else 0.35
    fig = plt.figure(figsize=(width / 100 * scale + left + 0.1, height / 100 * scale + top + 0.05))
    fw, fh = fig.get_figwidth(), fig.get_figheight()
    ax = fig.add_axes((left / fw, 0.05 / fh, 1 - (left + 0.1) / fw, 1 - (top + 0.05) / fh))
    ax.imshow(canvas, interpolation="nearest")
    ax.set_axis_off()
    for j, name in enumerate(col_labels):
        ax.text(j * (w + GUTTER) + w / 2, -3, name.replace("-", "\n", 1), ha="center",
                va="bottom", fontsize=7)
    for i, name in enumerate(row_labels):
        ax.text(-6, i * (h + GUTTER) + h / 2, name, ha="right", va="center", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9, y=0.995)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def reconstruction_grid(originals: torch.Tensor, columns: list[tuple[str, torch.Tensor]],
                        path: Path, title: str = "") -> None:
    """Rows are faces; the first column the originals, then one column per model."""
    cols = [("original", originals)] + columns
    grid = [[imgs[i] for _, imgs in cols] for i in range(len(originals))]
    scale = max(1.0, 128 / originals.shape[-1])  # small images are shown enlarged
    _draw(mosaic(grid), [n for n, _ in cols], [], tuple(originals.shape[-2:]), path, title, scale)


def sample_grid(rows: list[tuple[str, torch.Tensor]], path: Path, title: str = "") -> None:
    """One row of prior samples per model."""
    grid = [list(imgs) for _, imgs in rows]
    cell = tuple(rows[0][1].shape[-2:])
    scale = max(1.0, 128 / cell[1])
    _draw(mosaic(grid), [], [n for n, _ in rows], cell, path, title, scale)
