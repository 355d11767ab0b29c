"""Fine-tune every stage of a trained cascade at once, with a loss at every stage.

Why: `train` and `train-stage` train the cascade as the cascade paper does,
one stage at a time with the others frozen, so stage 1 never learns what its
image costs the stages after it: a residual that stage 2 codes cheaply, or one
its refine CNN cleans up well, earns stage 1 nothing. The recursively trained
autoencoders paper instead puts a loss at every decoder layer and trains them
together. Here each stage keeps its own loss (its estimated rate plus λ of its
step times its distortion, as in `train-stage`), and the losses are summed,
weighted per stage, with gradients flowing through each stage's image into
the stages before it (the reconstruction rounds with a straight-through
gradient, so every stage sees the image the decoder will build). Stage 1 then
trades some of its own rate–distortion for the later stages', as much as the
weights let it. Two trials of 600 steps came out worse than the models they
started from (results/codec-study/joint-tune.md): with equal weights and with
1, 0.3, 0.1 stages 1 and 2 spent 9–44% more bits and their points climbed
along the curve, not above it, since the later stages' losses (their λ is 6
and 39 times stage 1's in the shipped models) make the earlier stages code for
them. A stage with weight 0 still trains, on the later stages' losses alone.

Steps cycle through the quality levels as `train-stage` does. All stages'
symbols change, so the tables must be fitted anew afterwards: `cdcodec
refit-tables`. Checkpoints and resumes (`fine_tune.py`): run the same command
again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..model import CascadeCodec
from ..networks import lambda_for_step
from .fine_tune import FineTuneRun, check_levels, fine_tune, level_schedule
from .precision import check_precision
from .train import check_distortion_settings, distortion, loss_distortion, stage_param_groups


@dataclass(frozen=True)
class JointTuneSettings:
    steps: int
    # Weight of each stage's loss in the sum, stage 1 first; one per stage of the model.
    stage_weights: tuple[float, ...]
    batch: int = 16
    crop: int = 128
    lr: float = 2.5e-4  # encoder branches and refine CNNs, as train-stage
    transform_lr: float = 1e-4  # the block transforms, as train-stage
    checkpoint_seconds: float = 120.0
    seed: int = 0
    metric: str = "mse"  # as in TrainSettings
    ms_ssim_share: float = 0.5
    levels: str = "all"  # as in StageTuneSettings
    precision: str = "auto"  # as in TrainSettings

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError("need at least one training step")
        if not self.stage_weights or any(w < 0 or not math.isfinite(w) for w in self.stage_weights) or sum(self.stage_weights) <= 0:
            raise ValueError("stage weights must be finite, none negative, and not all zero")
        check_levels(self.levels)
        check_distortion_settings(self)
        check_precision(self.precision)


def cascade_optimizer(codec: CascadeCodec, settings: JointTuneSettings) -> torch.optim.Optimizer:
    """Adam over every stage, each part at `train-stage`'s learning rate for it."""
    codec.requires_grad_(False)
    groups = []
    for stage in codec.stages:
        stage.requires_grad_(True)
        groups += stage_param_groups(stage, settings)
    return torch.optim.Adam(groups)


def tune_jointly(
    codec: CascadeCodec,
    data_dir,
    work_dir,
    settings: JointTuneSettings,
    device: str = "cpu",
    out=None,
    progress: bool = True,
) -> CascadeCodec:
    """Train (or resume training) every stage of `codec` together; optionally save to
    `out` (with the source's tables: refit them). A checkpoint in `work_dir` replaces
    `codec`'s parameters."""
    if len(settings.stage_weights) != codec.num_stages:
        raise ValueError(f"{codec.config.model_id} has {codec.num_stages} stages: give as many stage weights, not {len(settings.stage_weights)}")

    def step(x: torch.Tensor, level: int, optimizer, use_amp: bool) -> str:
        figures = joint_step(codec, x, level, optimizer, settings, use_amp)
        return ",".join(f"{-10 * math.log10(max(mse, 1e-10)):.2f}" for mse, _ in figures)

    run = FineTuneRun(
        make_optimizer=lambda c: cascade_optimizer(c, settings),
        step=step,
        level_at=level_schedule(settings.levels, len(codec.config.qualities), codec.config.nominal_quality),
        desc="all stages",
        figure="PSNR of each stage",
    )
    return fine_tune(codec, run, data_dir, work_dir, settings, device, out, progress)


def joint_step(codec: CascadeCodec, x: torch.Tensor, level: int, optimizer, settings: JointTuneSettings, use_amp: bool) -> list[tuple[float, float]]:
    """One optimisation step of every stage at quality level `level`: each stage's
    (squared error, estimated bits per pixel), for the progress bar."""
    scale = codec.scale(level)
    pixels = x.shape[0] * x.shape[2] * x.shape[3]
    prev = codec.base(x)
    total = torch.zeros((), device=x.device)
    figures = []
    for stage in codec.stages:
        stage.train()
    for stage, weight in zip(codec.stages, settings.stage_weights):
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=use_amp):
            recon, bits, _ = stage(x, prev, scale)
        mse = distortion(recon, x, "mse")
        bpp = bits.float() / pixels
        total = total + weight * (bpp + lambda_for_step(stage.config.step * scale) * loss_distortion(recon, x, settings, mse))
        figures.append((mse.item(), bpp.item()))
        prev = recon.float()
    for stage in codec.stages:
        stage.eval()
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    for stage in codec.stages:  # each stage's gradient clipped as train-stage clips it
        torch.nn.utils.clip_grad_norm_(stage.parameters(), 1.0)
    optimizer.step()
    return figures


__all__ = ["JointTuneSettings", "cascade_optimizer", "tune_jointly", "joint_step"]
