"""Runs one experiment: every selected algorithm, every seed, trained and scored.

The order of work follows the sharing the stage-by-stage scheme allows: per
seed, each base model (stage 1) is trained or loaded once; its latent is
quantized and coded once (every cascade on that base sends the same latent, so
it costs the same bits); then each cascade on it gets its later decoders,
trained or loaded from the cache, and all its stages are scored.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import evaluate, rate
from .algorithms import Algorithm
from .cache import RunCache
from .config import TrainConfig
from .data import ImageSplits
from .models import CascadeAutoencoder
from .training import add_decoder, build_base, train_base, train_later_stage

#: How many test images the reconstruction grid shows.
GRID_IMAGES = 8


@dataclass
class ExperimentSpec:
    dataset: str
    epochs: int
    seeds: list[int]
    algorithms: list[Algorithm]
    cfg: TrainConfig = field(default_factory=TrainConfig)
    device: str = "cpu"
    cache_root: Path | str = "~/.cache/cdcodec/experiments/cascade"
    step_scale: float = rate.DEFAULT_STEP_SCALE
    single_limit: int = 1000
    log: Callable[[str], None] = print


@dataclass
class RunResult:
    """Scores of one algorithm with one seed."""

    algorithm: str
    seed: int
    stage_ssim: list[float]
    stage_ssim_quantized: list[float]
    stage_psnr: list[float]
    rate: rate.RateReport
    #: training time of all its stages (stage 1 is its base model's, shared with the
    #: other cascades on it), read from the cache for cached stages; None where a
    #: stage was cached before its time was recorded
    train_seconds: float | None


@dataclass
class ExperimentOutput:
    runs: list[RunResult]
    #: originals and, per algorithm, per-stage reconstructions of the first test images (first seed)
    grid_originals: np.ndarray
    grid_stages: dict[str, list[np.ndarray]]


def _known_sum(a: float | None, b: float | None) -> float | None:
    """a + b, or None if either time is unknown (stages cached before times were kept)."""
    return None if a is None or b is None else a + b


def _took(seconds: float | None) -> str:
    return "" if seconds is None else f" in {seconds:.1f} s"


def _base_model(alg: Algorithm, spec: ExperimentSpec, cache: RunCache, train_x: torch.Tensor, seed: int):
    """Stage 1 of `alg`'s base, from the cache or freshly trained (then cached)."""
    base_alg = Algorithm(alg.base_name, alg.base, None)
    model = build_base(base_alg, spec.cfg, seed).to(train_x.device)
    saved = cache.load(base_alg.name, seed, 1)
    if saved is not None:
        model.encoder.load_state_dict(saved["encoder"])
        model.decoders[0].load_state_dict(saved["decoder"])
        seconds = saved.get("train_seconds")
        spec.log(f"  seed {seed} {base_alg.name} stage 1: cached")
    else:
        store = cache.checkpoint(base_alg.name, seed, 1)
        seconds = train_base(model, base_alg, train_x, spec.cfg, seed, spec.epochs, store)
        state = {"encoder": model.encoder.state_dict(), "decoder": model.decoders[0].state_dict(), "train_seconds": seconds}
        cache.save(base_alg.name, seed, 1, state)
        spec.log(f"  seed {seed} {base_alg.name} stage 1: trained{_took(seconds)}")
    model.eval()
    return model, seconds


def _extend(model: CascadeAutoencoder, alg: Algorithm, spec: ExperimentSpec, cache: RunCache, train_x, seed: int):
    """Stages 2..N of a cascade on a copy of its base model, and their training seconds (None if unknown)."""
    model = copy.deepcopy(model)
    model.residual = alg.residual
    seconds: float | None = 0.0
    for stage in range(2, spec.cfg.stages + 1):
        saved = cache.load(alg.name, seed, stage)
        if saved is not None:
            for p in model.parameters():
                p.requires_grad_(False)
            add_decoder(model, alg, spec.cfg, seed).load_state_dict(saved["decoder"])
            stage_seconds = saved.get("train_seconds")
            spec.log(f"  seed {seed} {alg.name} stage {stage}: cached")
        else:
            store = cache.checkpoint(alg.name, seed, stage)
            decoder, stage_seconds = train_later_stage(model, alg, train_x, spec.cfg, seed, spec.epochs, store)
            cache.save(alg.name, seed, stage, {"decoder": decoder.state_dict(), "train_seconds": stage_seconds})
            spec.log(f"  seed {seed} {alg.name} stage {stage}: trained{_took(stage_seconds)}")
        seconds = _known_sum(seconds, stage_seconds)
    model.eval()
    return model, seconds


def load_cached(alg: Algorithm, cfg: TrainConfig, cache: RunCache, seed: int) -> CascadeAutoencoder | None:
    """Every stage of `alg` for one seed from the cache (None if any stage is missing).

    For analyses of finished runs (the scripts in results/cascade/); nothing is trained.
    """
    base = Algorithm(alg.base_name, alg.base, None)
    saved = cache.load(base.name, seed, 1)
    if saved is None:
        return None
    model = build_base(base, cfg, seed)
    model.encoder.load_state_dict(saved["encoder"])
    model.decoders[0].load_state_dict(saved["decoder"])
    model.residual = alg.residual
    if alg.cascade is not None:
        for stage in range(2, cfg.stages + 1):
            later = cache.load(alg.name, seed, stage)
            if later is None:
                return None
            add_decoder(model, alg, cfg, seed).load_state_dict(later["decoder"])
    model.eval()
    return model


def run_experiment(splits: ImageSplits, spec: ExperimentSpec) -> ExperimentOutput:
    device = torch.device(spec.device)
    train_x = torch.from_numpy(splits.train).to(device)
    test_x = torch.from_numpy(splits.test).to(device)
    cache = RunCache.for_run(spec.cache_root, splits, spec.cfg.key(), spec.epochs)
    spec.log(f"cache: {cache.dir}")
    runs: list[RunResult] = []
    grid: dict[str, list[np.ndarray]] = {}
    for seed in spec.seeds:
        for base in dict.fromkeys(a.base for a in spec.algorithms):
            family = [a for a in spec.algorithms if a.base == base]
            base_model, base_seconds = _base_model(family[0], spec, cache, train_x, seed)
            z_train = evaluate.latents(base_model, train_x).cpu().numpy()
            z_test = evaluate.latents(base_model, test_x).cpu().numpy()
            quantizer = rate.Quantizer.fit(z_train, spec.step_scale)
            tables = rate.fit_tables(quantizer.symbols(z_train))
            test_symbols = quantizer.symbols(z_test)
            report = rate.measure_rate(tables, test_symbols, spec.single_limit)
            if not report.roundtrip_ok:
                raise RuntimeError(f"{base} seed {seed}: entropy-coded latent did not decode back exactly")
            z_hat = torch.from_numpy(quantizer.values(test_symbols)).to(device)
            z_test_t = torch.from_numpy(z_test).to(device)
            for alg in family:
                if alg.cascade is None:
                    model, seconds = base_model, base_seconds
                else:
                    model, later_seconds = _extend(base_model, alg, spec, cache, train_x, seed)
                    seconds = _known_sum(base_seconds, later_seconds)
                stages = evaluate.decode_all_stages(model, z_test_t)
                stages_q = evaluate.decode_all_stages(model, z_hat)
                runs.append(
                    RunResult(
                        algorithm=alg.name,
                        seed=seed,
                        stage_ssim=evaluate.stage_ssims(splits.test, stages),
                        stage_ssim_quantized=evaluate.stage_ssims(splits.test, stages_q),
                        stage_psnr=evaluate.stage_psnrs(splits.test, stages),
                        rate=report,
                        train_seconds=seconds,
                    )
                )
                spec.log(f"  seed {seed} {alg.name}: SSIM per stage {[round(s, 5) for s in runs[-1].stage_ssim]}")
                if seed == spec.seeds[0]:
                    grid[alg.name] = [s[:GRID_IMAGES] for s in stages]
    return ExperimentOutput(runs=runs, grid_originals=splits.test[:GRID_IMAGES], grid_stages=grid)
