"""On-disk cache of trained stages, so runs resume and finished work is reused.

Layout under the cache root (outside the repository)::

    <root>/<dataset>-<data hash>/<config hash>/e<epochs>/seed<k>/<ALGO>/stage<n>.pt

Stage 1 is stored once per base model (under ``AE``, ``AAE``, ``VAE``, ``WAE``)
and shared by every cascade on that base; stage n > 1 is stored under the
cascade's own name. While a stage trains, ``stage<n>.partial.pt`` holds the
state after the last finished epoch; it is replaced by ``stage<n>.pt`` when the
stage completes. Writes go to a temporary file first and are renamed into
place, so an interrupted run never leaves a half-written file that looks valid.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

DEFAULT_CACHE_DIR = Path(os.environ.get("CDCODEC_CACHE", Path.home() / ".cache" / "cdcodec")) / "experiments" / "cascade"


def data_key(name: str, *arrays: np.ndarray) -> str:
    """Dataset name plus a hash of its contents, so different data never collide."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return f"{name}-{h.hexdigest()[:10]}"


def _atomic_save(obj: object, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class StageCheckpoint:
    """Per-epoch training state of one stage (implements `training.EpochStore`)."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> dict | None:
        if not self.path.is_file():
            return None
        return torch.load(self.path, map_location="cpu", weights_only=True)

    def save(self, state: dict) -> None:
        _atomic_save(state, self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


class RunCache:
    """Finished stage weights for one (data, config, epochs) combination."""

    def __init__(self, root: str | Path, dataset_key: str, config_key: str, epochs: int):
        self.dir = Path(root).expanduser() / dataset_key / config_key / f"e{epochs}"

    @classmethod
    def for_run(cls, root: str | Path, splits, config_key: str, epochs: int) -> "RunCache":
        """The cache entry of a run on `splits` (an `ImageSplits`) with one config and epoch count."""
        return cls(root, data_key(splits.name, splits.train, splits.test), config_key, epochs)

    def stage_path(self, owner: str, seed: int, stage: int) -> Path:
        """`owner` is the base model's name for stage 1, the algorithm's otherwise."""
        return self.dir / f"seed{seed}" / owner / f"stage{stage}.pt"

    def checkpoint(self, owner: str, seed: int, stage: int) -> StageCheckpoint:
        final = self.stage_path(owner, seed, stage)
        return StageCheckpoint(final.with_name(f"stage{stage}.partial.pt"))

    def load(self, owner: str, seed: int, stage: int) -> dict | None:
        path = self.stage_path(owner, seed, stage)
        if not path.is_file():
            return None
        return torch.load(path, map_location="cpu", weights_only=True)

    def save(self, owner: str, seed: int, stage: int, state: dict) -> None:
        _atomic_save(state, self.stage_path(owner, seed, stage))
        self.checkpoint(owner, seed, stage).clear()
