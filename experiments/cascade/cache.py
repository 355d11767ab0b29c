"""On-disk cache of trained stages, so runs resume and finished work is reused.

Layout under the cache root (outside the repository)::

    <root>/<dataset>-<data hash>/<config hash>/e<epochs>/seed<k>/<ALGO>/stage<n>.safetensors

Stage 1 is stored once per base model (under ``AE``, ``AAE``, ``VAE``, ``WAE``)
and shared by every cascade on that base; stage n > 1 is stored under the
cascade's own name. While a stage trains, ``stage<n>.partial.safetensors``
holds the state after the last finished epoch; it is replaced by
``stage<n>.safetensors`` when the stage completes. Writes go to a temporary
file first and are renamed into place, so an interrupted run never leaves a
half-written file that looks valid. Files are safetensors (`state_file`); a
cache from before that, with torch pickles named ``.pt``, is converted as it
is read.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..state_file import load_state, save_state

DEFAULT_CACHE_DIR = Path(os.environ.get("CDCODEC_CACHE", Path.home() / ".cache" / "cdcodec")) / "experiments" / "cascade"


def data_key(name: str, *arrays: np.ndarray) -> str:
    """Dataset name plus a hash of its contents, so different data never collide."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return f"{name}-{h.hexdigest()[:10]}"


def _legacy(path: Path) -> Path:
    """Where a cache written before safetensors kept the same state."""
    return path.with_suffix(".pt")


class StageCheckpoint:
    """Per-epoch training state of one stage (implements `training.EpochStore`)."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> dict | None:
        return load_state(self.path, _legacy(self.path))

    def save(self, state: dict) -> None:
        save_state(self.path, state)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        _legacy(self.path).unlink(missing_ok=True)


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
        return self.dir / f"seed{seed}" / owner / f"stage{stage}.safetensors"

    def checkpoint(self, owner: str, seed: int, stage: int) -> StageCheckpoint:
        final = self.stage_path(owner, seed, stage)
        return StageCheckpoint(final.with_name(f"stage{stage}.partial.safetensors"))

    def load(self, owner: str, seed: int, stage: int) -> dict | None:
        path = self.stage_path(owner, seed, stage)
        return load_state(path, _legacy(path))

    def save(self, owner: str, seed: int, stage: int, state: dict) -> None:
        save_state(self.stage_path(owner, seed, stage), state)
        self.checkpoint(owner, seed, stage).clear()
