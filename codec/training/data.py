"""Training images held in memory, served as random crops with random flips.

The photos are decoded once (a few hundred MB of uint8), so a training step
costs a crop and a copy, not a JPEG decode: on a 2-core machine the data path
must not compete with the networks for CPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp"}


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"training folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images in {folder}")
    return files


class CropSampler:
    """Random `crop`×`crop` RGB crops (with horizontal/vertical flips) from images in memory."""

    def __init__(self, images: list[np.ndarray], crop: int, seed: int = 0):
        self.images = [im for im in images if im.shape[0] >= crop and im.shape[1] >= crop]
        if not self.images:
            raise ValueError(f"no training image is at least {crop}x{crop}")
        self.crop = crop
        self.rng = np.random.default_rng(seed)

    @classmethod
    def from_folder(cls, folder: str | Path, crop: int, seed: int = 0, progress: bool = True) -> "CropSampler":
        files = list_images(folder)
        images = []
        for path in tqdm(files, desc="decoding training images", disable=not progress, leave=False):
            with Image.open(path) as img:
                images.append(np.asarray(img.convert("RGB")))
        return cls(images, crop, seed)

    def batch(self, size: int) -> torch.Tensor:
        """(size, 3, crop, crop) float tensor in [0, 1]."""
        out = np.empty((size, self.crop, self.crop, 3), dtype=np.uint8)
        for i in range(size):
            img = self.images[self.rng.integers(len(self.images))]
            top = self.rng.integers(img.shape[0] - self.crop + 1)
            left = self.rng.integers(img.shape[1] - self.crop + 1)
            patch = img[top : top + self.crop, left : left + self.crop]
            if self.rng.random() < 0.5:
                patch = patch[:, ::-1]
            if self.rng.random() < 0.5:
                patch = patch[::-1]
            out[i] = patch
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)
