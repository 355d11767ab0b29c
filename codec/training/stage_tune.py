"""Fine-tune one stage of a trained cascade at every quality level, optionally widening its transform.

Why: a change to one stage's architecture should not cost a new cascade. The
lapped-transform probe (results/codec-study/lapped-stage1.md) found that
stage 1 with kernels reaching 4 pixels beyond its 16×16 block codes 2.5% fewer
bits than the same fine-tuning without, starting from the default model's
stage 1 with zero margins. `with_overlap` makes that starting point: a copy
whose stage's kernels are wider by zero margins, so it decodes exactly like
the source until trained. `tune_stage_at_all_qualities` then trains all of
that stage (block transform, encoder branch, refine CNN, rate model), the other
stages frozen, cycling through the quality levels as `train-refine` does (the
shipped levels scale the step by 2^(k/2), and a stage that is used at five
steps learns at all of them), at the trained level alone, or at weighted
levels (`fine_tune.level_schedule`). Each level's loss is the stage's estimated rate
plus λ of the step it ran at times its distortion; the training-time rate
model's scales follow the step (`LaplacePrior.bits`).

The stage's symbols change, so its tables (and later stages', whose input
changes) must be fitted anew afterwards: `cdcodec refit-tables`.
Checkpoints and resumes (`fine_tune.py`): run the same command again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..model import CascadeCodec, CodecConfig
from ..networks import lambda_for_step
from .fine_tune import FineTuneRun, check_levels, fine_tune, level_schedule
from .precision import check_precision
from .train import check_distortion_settings, distortion, loss_distortion, stage_optimizer


@dataclass(frozen=True)
class StageTuneSettings:
    stage: int  # 1-based
    steps: int
    batch: int = 16
    crop: int = 128
    lr: float = 2.5e-4  # encoder branch and refine CNN
    # The block transform's; higher than train's 2e-5 so that new margins can grow in
    # a few hundred steps (the probe's 1e-4).
    transform_lr: float = 1e-4
    checkpoint_seconds: float = 120.0
    seed: int = 0
    metric: str = "mse"  # as in TrainSettings
    ms_ssim_share: float = 0.5
    # "all": each step at the next quality level in turn; "trained": every step at the
    # level the model was trained at (factor 1), as the lapped probe fine-tuned; or
    # one weight per level, e.g. "2,2,2,1,1" (`fine_tune.level_schedule`).
    levels: str = "all"
    precision: str = "auto"  # as in TrainSettings

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError("need at least one training step")
        if self.stage < 1:
            raise ValueError("stages are numbered from 1")
        check_levels(self.levels)
        check_distortion_settings(self)
        check_precision(self.precision)


def with_overlap(codec: CascadeCodec, stage: int, overlap: int, model_id: str) -> CascadeCodec:
    """A copy of `codec` under `model_id` whose stage `stage` (1-based) has kernels
    reaching `overlap` pixels beyond its block; the new margins are zero, so the
    copy's images equal the source's. Margins only grow; tables are the source's."""
    if not 1 <= stage <= codec.num_stages:
        raise ValueError(f"{codec.config.model_id} has stages 1 to {codec.num_stages}, not {stage}")
    index = stage - 1
    old = codec.config.stages[index]
    if overlap < old.overlap:
        raise ValueError(f"stage {stage} already overlaps its blocks by {old.overlap} pixels; the overlap can only grow")
    stages = list(codec.config.stages)
    stages[index] = replace(old, overlap=overlap)  # validates the reach
    widened = CascadeCodec(CodecConfig(model_id=model_id, stages=tuple(stages), qualities=codec.config.qualities))
    state = codec.state_dict()
    transform = widened.stages[index].transform
    grow = slice(overlap - old.overlap, overlap - old.overlap + old.block + 2 * old.overlap)
    for name in ("analysis", "synthesis"):
        key = f"stages.{index}.transform.{name}.weight"
        wide = torch.zeros_like(getattr(transform, name).weight)
        wide[:, :, grow, grow] = state[key]
        state[key] = wide
    widened.load_state_dict(state)
    widened.tables = [dict(t) for t in codec.tables]
    return widened


def tune_stage_at_all_qualities(
    codec: CascadeCodec,
    data_dir: str | Path,
    work_dir: str | Path,
    settings: StageTuneSettings,
    device: str = "cpu",
    out: str | Path | None = None,
    progress: bool = True,
) -> CascadeCodec:
    """Train (or resume training) stage `settings.stage` of `codec` at every quality level;
    optionally save to `out` (with the source's tables: refit them). A checkpoint in
    `work_dir` replaces `codec`'s parameters."""
    index = settings.stage - 1
    if index >= codec.num_stages:
        raise ValueError(f"{codec.config.model_id} has {codec.num_stages} stages, not {settings.stage}")

    def step(x: torch.Tensor, level: int, optimizer, use_amp: bool) -> str:
        mse, bpp = stage_step(codec, index, x, level, optimizer, settings, use_amp)
        return f"{bpp:.3f}/{-10 * math.log10(max(mse, 1e-10)):.2f}"

    run = FineTuneRun(
        make_optimizer=lambda c: stage_optimizer(c, index, settings),  # only this stage trains
        step=step,
        level_at=level_schedule(settings.levels, len(codec.config.qualities), codec.config.nominal_quality),
        desc=f"stage {settings.stage}",
        figure="bpp/PSNR",
    )
    return fine_tune(codec, run, data_dir, work_dir, settings, device, out, progress)


def stage_step(codec: CascadeCodec, index: int, x: torch.Tensor, level: int, optimizer, settings: StageTuneSettings, use_amp: bool) -> tuple[float, float]:
    """One optimisation step of stage `index` at quality level `level`: (its squared error,
    its estimated bits per pixel), for the progress bar. Earlier stages run without
    gradients, as the decoder builds their image; later stages are not run."""
    scale = codec.scale(level)
    stage = codec.stages[index]
    with torch.no_grad():
        prev = codec.base(x)
        for earlier in codec.stages[:index]:
            prev = earlier.synthesise(earlier.quantize(earlier.analyse(x, prev, scale)), prev, scale)
    stage.train()
    with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=use_amp):
        recon, bits, _ = stage(x, prev, scale)
    stage.eval()
    mse = distortion(recon, x, "mse")
    bpp = bits.float() / (x.shape[0] * x.shape[2] * x.shape[3])
    loss = bpp + lambda_for_step(stage.config.step * scale) * loss_distortion(recon, x, settings, mse)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(stage.parameters(), 1.0)
    optimizer.step()
    return mse.item(), bpp.item()


__all__ = ["StageTuneSettings", "with_overlap", "tune_stage_at_all_qualities", "stage_step"]
