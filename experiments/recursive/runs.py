"""Train-or-load one (configuration, seed) run, caching finished runs outside the repo.

A full reproduction is dozens of CPU training runs; a crash or a Ctrl-C should not throw
away the ones that finished.  Each finished run leaves ``<cache>/runs/<name>/`` with the
weights and a ``result.json`` written last, so a run counts as done only if that file
exists.  The directory name hashes everything that changes the outcome (configuration,
architecture, training settings, seed, data fingerprint, split sizes), so changing any
option trains afresh instead of silently reusing a stale model.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..state_file import load_state, save_state
from .configs import RunConfig
from .data import Split
from .evaluate import sse_per_image
from .model import Autoencoder, ArchSpec
from .training import TrainSettings, train


@dataclass(frozen=True)
class Setup:
    """What all runs of one invocation share."""

    n_layers: int
    base_width: int
    settings: TrainSettings  # its seed is replaced per run
    data_key: str
    n_train: int
    n_eval: int


@dataclass
class RunResult:
    config: str
    seed: int
    sse: list[float]  # per held-out image
    seconds: float
    cached: bool
    model: Autoencoder

    @property
    def mean_sse(self) -> float:
        return float(np.mean(self.sse))


def run_name(config: RunConfig, seed: int, setup: Setup) -> str:
    spec = config.spec(setup.n_layers, setup.base_width)
    settings = asdict(setup.settings) | {"seed": seed}
    if settings["layer_weights"] is not None:
        settings["layer_weights"] = list(settings["layer_weights"])
    described = asdict(config)
    if described["frozen_bn"] == "eval":  # the default: runs cached before the option existed keep their names
        del described["frozen_bn"]
    blob = json.dumps({"config": described, "spec": spec.as_dict(), "settings": settings,
                       "data": setup.data_key, "n_train": setup.n_train, "n_eval": setup.n_eval},
                      sort_keys=True)
    return f"{config.key}-s{seed}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def _settings_for(setup: Setup, seed: int) -> TrainSettings:
    s = setup.settings
    return TrainSettings(epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, seed=seed,
                         vae_sigma=s.vae_sigma, layer_weights=s.layer_weights)


def new_model(spec: ArchSpec, seed: int) -> Autoencoder:
    torch.manual_seed(seed)
    return Autoencoder(spec)


def run_one(config: RunConfig, seed: int, setup: Setup, faces: np.ndarray, split: Split,
            device: str = "cpu", cache_dir: Path | None = None, log=None) -> RunResult:
    """Train ``config`` with ``seed`` (or load it from the cache) and score it."""
    spec = config.spec(setup.n_layers, setup.base_width)
    model = new_model(spec, seed)
    run_dir = Path(cache_dir) / "runs" / run_name(config, seed, setup) if cache_dir else None
    if run_dir is not None and (run_dir / "result.json").exists():
        model.load_state_dict(load_state(run_dir / "model.safetensors", legacy=run_dir / "model.pt"))
        model.to(device).eval()
        saved = json.loads((run_dir / "result.json").read_text())
        return RunResult(config.key, seed, saved["sse"], saved["seconds"], True, model)

    start = time.perf_counter()
    train(model, config.mode, faces, split.train, _settings_for(setup, seed), device, log, config.frozen_bn)
    seconds = time.perf_counter() - start
    sse = sse_per_image(model, faces, split.eval, device).tolist()
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_state(run_dir / "model.safetensors", model.state_dict())
        tmp = run_dir / "result.json.tmp"
        tmp.write_text(json.dumps({"config": config.key, "seed": seed, "sse": sse,
                                   "seconds": seconds}))
        tmp.replace(run_dir / "result.json")
    return RunResult(config.key, seed, sse, seconds, False, model)
