"""LFW faces as the paper feeds them: the centre 128x128 crop of each 250x250 face, in [0, 1].

Decoding ~2,900 JPEGs takes a while on a small machine, so the crops are decoded once into
one uint8 array (N, H, W, 3) and, optionally, kept as a .npy file outside the repository
(keyed by the file list and the crop, so a different folder or crop never reuses it).
Training converts a batch at a time to float, which keeps memory at ~140 MB for all faces.

The split is deterministic and independent of how many training faces a run uses: files
are sorted by name, shuffled with a fixed seed, the first ``n_eval`` are held out, and a
run that asks for fewer training faces takes a prefix of the rest.  So every run, reduced
or not, is scored on the same held-out faces.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

SPLIT_SEED = 20220226  # the paper's date; any fixed number would do
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class DataMissing(FileNotFoundError):
    """The face folder is absent or has no images (the CLI turns this into one line)."""


def list_images(data_dir: Path) -> list[Path]:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataMissing(f"face folder not found: {data_dir}")
    files = sorted(p for p in data_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataMissing(f"no .jpg/.png faces in {data_dir}")
    return files


def centre_crop(img: Image.Image, crop: int, size: int | None = None) -> np.ndarray:
    """The centre ``crop`` x ``crop`` pixels as uint8 RGB, optionally resized to ``size``.

    The paper crops 128 from 250 and does not resize; ``size`` exists only for experiments
    that want smaller inputs (box filter, so it averages rather than aliases).
    """
    img = img.convert("RGB")
    w, h = img.size
    if w < crop or h < crop:
        raise ValueError(f"image {w}x{h} smaller than crop {crop}")
    left, top = (w - crop) // 2, (h - crop) // 2
    img = img.crop((left, top, left + crop, top + crop))
    if size is not None and size != crop:
        img = img.resize((size, size), Image.BOX)
    return np.asarray(img, dtype=np.uint8)


def _fingerprint(files: list[Path], crop: int, size: int | None) -> str:
    h = hashlib.sha256(f"{crop}:{size}".encode())
    for f in files:
        h.update(f.name.encode())
        h.update(str(f.stat().st_size).encode())
    return h.hexdigest()[:16]


def load_faces(data_dir: Path, crop: int = 128, size: int | None = None,
               cache_dir: Path | None = None) -> tuple[np.ndarray, list[str], str]:
    """All faces as uint8 (N, S, S, 3), their file names, and a fingerprint of the set.

    The fingerprint goes into the run cache keys, so results trained on another folder or
    crop are never mistaken for these.
    """
    files = list_images(data_dir)
    key = _fingerprint(files, crop, size)
    cache = Path(cache_dir) / f"lfw-{key}.npy" if cache_dir is not None else None
    if cache is not None and cache.exists():
        faces = np.load(cache)
    else:
        faces = np.stack([centre_crop(Image.open(f), crop, size) for f in files])
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp.npy")
            np.save(tmp, faces)
            tmp.replace(cache)
    return faces, [f.name for f in files], key


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # indices into the face array
    eval: np.ndarray


def split_indices(n_faces: int, n_eval: int = 100, n_train: int | None = None) -> Split:
    """Fixed held-out set of ``n_eval`` faces; training faces are a prefix of the rest."""
    if n_eval < 1 or n_eval >= n_faces:
        raise ValueError(f"n_eval={n_eval} must leave training faces out of {n_faces}")
    order = np.random.default_rng(SPLIT_SEED).permutation(n_faces)
    train = order[n_eval:]
    if n_train is not None:
        train = train[:n_train]
    return Split(train=np.sort(train), eval=np.sort(order[:n_eval]))


def to_tensor(faces: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [0, 1], the paper's division by 255."""
    return torch.from_numpy(np.ascontiguousarray(faces)).permute(0, 3, 1, 2).float().div_(255.0)


def batches(faces: np.ndarray, idx: np.ndarray, batch_size: int,
            rng: np.random.Generator | None = None):
    """Float batches of ``faces[idx]`` in the order of ``idx``, or shuffled when ``rng`` is given."""
    order = rng.permutation(idx) if rng is not None else idx
    for start in range(0, len(order), batch_size):
        yield to_tensor(faces[order[start:start + batch_size]])


def synthetic_faces(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Smooth face-like blobs (uint8) for tests that must not need ../shared.

    A skin-coloured ellipse with two dark eyes on a random background: structured enough
    that an autoencoder has something to learn, cheap enough to make in microseconds.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        bg = rng.uniform(0, 255, 3)
        skin = np.array([200, 150, 120]) + rng.uniform(-40, 40, 3)
        cx, cy = 0.5 + rng.uniform(-0.08, 0.08, 2)
        face = ((xx - cx) / 0.3) ** 2 + ((yy - cy) / 0.4) ** 2 < 1
        img = np.where(face[..., None], skin, bg)
        for ex in (cx - 0.12, cx + 0.12):
            eye = (xx - ex) ** 2 + (yy - cy + 0.08) ** 2 < 0.004
            img[eye] = 30
        out[i] = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    return out
