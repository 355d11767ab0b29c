"""Image loaders for the paper's datasets: IDX (gzip or raw) and MedMNIST npz.

The paper feeds flattened 28x28 grayscale images scaled from [0, 255] to [-1, 1]
into fully connected networks, so every loader here ends in that representation.
The loaders take any path, so other IDX or MedMNIST files work the same way; the
named datasets only fix where the files sit under a data directory.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: IDX type codes (third magic byte) that we accept, mapped to numpy dtypes.
#: Multi-byte types are big-endian in the format.
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


@dataclass(frozen=True)
class ImageSplits:
    """Train and test images, float32 of shape (N, 784) in [-1, 1]."""

    name: str
    train: np.ndarray
    test: np.ndarray


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw) into an array of its declared shape."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic)")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_TYPES:
        raise ValueError(f"{path}: unknown IDX element type 0x{type_code:02x}")
    header_end = 4 + 4 * ndim
    if len(raw) < header_end:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header_end], dtype=">u4"))
    dtype = _IDX_TYPES[type_code]
    count = int(np.prod(shape)) if shape else 1
    body = raw[header_end:]
    if len(body) != count * dtype.itemsize:
        raise ValueError(f"{path}: IDX body has {len(body)} bytes, header promises {count * dtype.itemsize}")
    return np.frombuffer(body, dtype=dtype).reshape(shape)


def read_medmnist(path: str | Path, split: str) -> np.ndarray:
    """Read one split's images (``{split}_images``) from a MedMNIST npz file."""
    with np.load(Path(path)) as archive:
        key = f"{split}_images"
        if key not in archive:
            raise ValueError(f"{path}: no '{key}' array (has {sorted(archive.files)})")
        return np.asarray(archive[key])


def to_unit_range(images: np.ndarray) -> np.ndarray:
    """Flatten 8-bit 28x28 grayscale images to (N, 784) float32 in [-1, 1].

    Colour MedMNIST sets (N, 28, 28, 3) are converted to gray as the paper does,
    with the ITU-R 601 luma weights.
    """
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 3:
        images = images.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"expected (N, 28, 28) images, got shape {images.shape}")
    flat = images.reshape(len(images), 28 * 28).astype(np.float32)
    return flat / np.float32(127.5) - np.float32(1.0)


def load_images(path: str | Path, split: str = "train") -> np.ndarray:
    """Load images from an IDX file or one split of a MedMNIST npz, scaled to [-1, 1]."""
    path = Path(path)
    if path.suffix == ".npz":
        return to_unit_range(read_medmnist(path, split))
    return to_unit_range(read_idx(path))


#: Where each named dataset's files sit under the data directory.
DATASET_FILES: dict[str, tuple[str, str]] = {
    "mnist": ("mnist/train-images-idx3-ubyte.gz", "mnist/t10k-images-idx3-ubyte.gz"),
    "fashion-mnist": ("fashion-mnist/train-images-idx3-ubyte.gz", "fashion-mnist/t10k-images-idx3-ubyte.gz"),
    "breastmnist": ("medmnist/breastmnist.npz", "medmnist/breastmnist.npz"),
}


def dataset_paths(name: str, data_dir: str | Path) -> tuple[Path, Path]:
    """Train and test file paths of a named dataset under `data_dir`."""
    if name not in DATASET_FILES:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(DATASET_FILES)}")
    train_rel, test_rel = DATASET_FILES[name]
    return Path(data_dir) / train_rel, Path(data_dir) / test_rel


def load_dataset(name: str, data_dir: str | Path) -> ImageSplits:
    """Load a named dataset's train and test images from `data_dir`.

    MedMNIST's validation split is left out: the paper trains on the training
    split and reports the test split (Tab. 2 lists only those two).
    """
    train_path, test_path = dataset_paths(name, data_dir)
    for path in (train_path, test_path):
        if not path.is_file():
            raise FileNotFoundError(f"{name}: missing data file {path}")
    return ImageSplits(
        name=name,
        train=load_images(train_path, "train"),
        test=load_images(test_path, "test"),
    )
