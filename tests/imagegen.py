"""Synthetic, photo-like test images (tests must not need ../shared)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def smooth_image(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A photo-like test image: smooth gradients plus a little texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    planes = []
    for c in range(channels):
        f1, f2 = rng.uniform(0.01, 0.08, size=2)
        plane = 128 + 80 * np.sin(f1 * xx + c) * np.cos(f2 * yy) + rng.normal(0, 6, size=(height, width))
        planes.append(plane)
    img = np.clip(np.stack(planes, axis=-1), 0, 255).astype(np.uint8)
    return img[:, :, 0] if channels == 1 else img


def photo_folder(parent: Path, count: int = 3) -> Path:
    """A folder of `count` small synthetic photos (40×48 PNGs) to train on."""
    folder = parent / "photos"
    folder.mkdir()
    for seed in range(count):
        Image.fromarray(smooth_image(40, 48, seed=seed)).save(folder / f"{seed}.png")
    return folder
