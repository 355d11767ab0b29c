"""Test images: a folder of image files, or photographs bundled with scikit-image.

The bundled set lets anyone run ``cdcodec bench`` right after installing, with no
network: these skimage.data functions read files shipped inside the scikit-image
wheel (the ones that would download, such as the larger datasets, are not used).
Every image is brought to RGB uint8, the only input the adapters accept: an alpha
channel is dropped and grey images are repeated into three channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

# Colour photographs shipped inside scikit-image (no download).
BUNDLED = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry")
EXTENSIONS = {".png", ".ppm", ".pnm", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".webp"}


@dataclass(frozen=True)
class TestImage:
    name: str
    pixels: np.ndarray  # H x W x 3, uint8
    source: str


def as_rgb(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"only 8-bit images are benchmarked, got {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"expected an HxW, HxWx3 or HxWx4 image, got shape {array.shape}")
    return np.ascontiguousarray(array[:, :, :3])


def bundled_images() -> list[TestImage]:
    import skimage.data

    return [TestImage(name, as_rgb(getattr(skimage.data, name)()), f"skimage.data.{name}") for name in BUNDLED]


def folder_images(folder: Path) -> list[TestImage]:
    """Every image file directly in `folder`, sorted by name."""
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in EXTENSIONS and p.is_file())
    if not paths:
        raise FileNotFoundError(f"no image files ({', '.join(sorted(EXTENSIONS))}) in {folder}")
    images = []
    for path in paths:
        with Image.open(path) as im:
            pixels = np.asarray(im.convert("RGB"))
        images.append(TestImage(path.stem, as_rgb(pixels), str(path)))
    return images
