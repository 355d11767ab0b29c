"""The resumable loop that fine-tunes part of a trained cascade, one quality level per step.

Why: `train-refine` (quality_refine.py) and `train-stage` (stage_tune.py) differ
in what trains and in the step itself, not in how a run seeds, resumes from its
checkpoint, warms up and decays the learning rate, samples crops, reports
progress and writes its log and model. Keeping that here once means a fix to
resuming or checkpointing reaches both.

A run is reproducible and resumable: the same command after an interruption
continues from `work_dir`'s checkpoint (parameters, tables, optimizer state,
step) with the crop sampler reseeded at the step it stopped at.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from ..model import CascadeCodec
from ..weights import save_codec
from .checkpoint import load_checkpoint, save_checkpoint
from .data import CropSampler
from .precision import uses_autocast
from .train import CHECKPOINT, _lr_factor, _say


@dataclass(frozen=True)
class FineTuneRun:
    """What one fine-tuning run does, beyond the loop's common settings."""

    # The optimizer over the parameters that train, made once the codec is on its
    # device (its groups' learning rates are the peaks the schedule scales).
    make_optimizer: Callable[[CascadeCodec], torch.optim.Optimizer]
    # One optimisation step on a batch at a quality level: (x, level, optimizer,
    # use_amp) -> the progress bar's figure for that level.
    step: Callable[[torch.Tensor, int, torch.optim.Optimizer, bool], str]
    # The quality level of a step (by its number).
    level_at: Callable[[int], int]
    desc: str  # the progress bar's name
    figure: str  # what `step`'s figures are, e.g. "bpp/PSNR"


def check_levels(levels: str) -> None:
    """Raise ValueError unless `levels` is "all", "trained" or a list of per-level weights
    (comma-separated integers, at least one above zero); see `level_schedule`."""
    _level_weights(levels)


def _level_weights(levels: str) -> list[int] | None:
    """The per-level weights `levels` lists, or None for "all" and "trained"; ValueError otherwise."""
    if levels in ("all", "trained"):
        return None
    try:
        weights = [int(part) for part in levels.split(",")]
    except ValueError:
        weights = []
    if not weights or min(weights) < 0 or max(weights) == 0:
        raise ValueError(f"levels must be 'all', 'trained' or one weight per quality level (e.g. 2,2,2,1,1), not {levels!r}")
    return weights


def level_schedule(levels: str, count: int, nominal: int) -> Callable[[int], int]:
    """The quality level of each step, for a model with `count` levels.

    "all": every level in turn; "trained": the `nominal` level alone; a list of
    weights such as "2,2,2,1,1": level k trains weights[k] times per cycle,
    interleaved (0 1 2 3 4 0 1 2 ...), so that a run can spend more of its steps
    where the codec trails (the low levels: results/bench/avif-gap-by-rate.md)
    and still visit every level with a weight above zero regularly."""
    weights = _level_weights(levels)
    if levels == "trained":
        return lambda number: nominal
    if weights is None:
        weights = [1] * count
    if len(weights) != count:
        raise ValueError(f"the model has {count} quality levels: give {count} level weights, not {len(weights)}")
    cycle = [level for turn in range(max(weights)) for level in range(count) if weights[level] > turn]
    return lambda number: cycle[number % len(cycle)]


def fine_tune(
    codec: CascadeCodec,
    run: FineTuneRun,
    data_dir: str | Path,
    work_dir: str | Path,
    settings,
    device: str = "cpu",
    out: str | Path | None = None,
    progress: bool = True,
) -> CascadeCodec:
    """Run (or resume) `run` on `codec` for `settings.steps` steps of `settings.batch`
    crops of `settings.crop` pixels; checkpoint every `settings.checkpoint_seconds`;
    write `work_dir`/log.json and, if `out` is given, the model (with the tables the
    checkpoint or `codec` holds). A checkpoint in `work_dir` replaces `codec`'s
    parameters and tables."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(settings.seed)
    dev = torch.device(device)
    ckpt = work_dir / CHECKPOINT
    state = {"step": 0, "seconds": 0.0}
    optimizer_state = None
    if ckpt.exists():
        state, optimizer_state = load_checkpoint(ckpt, codec)
        _say(f"resuming from {ckpt}: step {state['step']}", progress)
    codec.to(dev).eval()
    optimizer = run.make_optimizer(codec)
    peak_lrs = [group["lr"] for group in optimizer.param_groups]
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    sampler = CropSampler.from_folder(data_dir, settings.crop, seed=settings.seed + state["step"], progress=progress)
    use_amp = uses_autocast(dev, settings.precision)
    bar = tqdm(total=settings.steps, initial=state["step"], desc=run.desc, disable=not progress, dynamic_ncols=True)
    started = time.monotonic() - state["seconds"]
    last_save = time.monotonic()
    last: dict[int, str] = {}  # quality level -> its figure at its latest step, for the progress bar
    while state["step"] < settings.steps:
        for group, peak in zip(optimizer.param_groups, peak_lrs):
            group["lr"] = peak * _lr_factor(state["step"], settings.steps)
        level = run.level_at(state["step"])
        x = sampler.batch(settings.batch).to(dev, non_blocking=True)
        last[level] = run.step(x, level, optimizer, use_amp)
        state["step"] += 1
        state["seconds"] = time.monotonic() - started
        bar.update(1)
        if state["step"] % 10 == 0:
            bar.set_postfix_str(f"{run.figure} by level: " + " ".join(last[q] for q in sorted(last)))
        if time.monotonic() - last_save > settings.checkpoint_seconds:
            save_checkpoint(ckpt, codec, optimizer, state)
            last_save = time.monotonic()
    bar.close()
    save_checkpoint(ckpt, codec, optimizer, state)
    codec.requires_grad_(False)
    codec.cpu().eval()
    log = {"steps": state["step"], "train_seconds": round(state["seconds"], 3), "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    (work_dir / "log.json").write_text(json.dumps(log, indent=2))
    if out is not None:
        save_codec(codec, out)
    return codec


__all__ = ["FineTuneRun", "check_levels", "fine_tune", "level_schedule"]
