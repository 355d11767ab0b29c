"""Teach a trained cascade's refine CNNs every quality level, not only the trained one.

Why: a stage is trained at one quantizer step, and the CLI's other quality
levels scale every step by 2^(±1/2) and 2^(±1). A refine CNN that learned the
artefacts of one step corrects too much at finer steps and too little at
coarser ones; the post-filter study (results/codec-study/postfilter.md) found
up to 0.75 dB at level 4 in a linear rescaling of its correction alone.

`with_quality_input` gives every refine CNN the level as a seventh input plane
(StageConfig.refine_sees_quality) whose weights start at zero, so the new model
decodes exactly like the old one until trained. `train_refine_at_all_qualities`
then trains the refine CNNs alone, cycling through the quality levels, while
the block transforms, encoder branches and rate models stay frozen: stage 1's
symbols do not change at all, later stages' only through the better image they
refine, so the source model's symbol tables are kept (`cdcodec refit-tables`
can fit them anew). Each stage's loss is its distortion times λ of the step it
ran at (`lambda_for_step`), which keeps the levels' terms of similar size, and
each stage learns on its own output only (the image handed to the next stage
is detached).

Checkpoints and resumes (`fine_tune.py`): run the same command again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..model import CascadeCodec, CodecConfig
from ..networks import lambda_for_step
from .fine_tune import FineTuneRun, fine_tune, level_schedule
from .precision import check_precision
from .train import check_distortion_settings, distortion, loss_distortion


@dataclass(frozen=True)
class RefineSettings:
    steps: int
    batch: int = 16
    crop: int = 128
    lr: float = 2.5e-4
    checkpoint_seconds: float = 120.0
    seed: int = 0
    # As in TrainSettings: the distortion each stage lowers ("mse", "ms-ssim" or
    # "mixed", with ms_ssim_share of it 1 - MS-SSIM).
    metric: str = "mse"
    ms_ssim_share: float = 0.5
    # The stages (1-based) whose refine CNNs train; None: all. Later stages are not
    # run: stage 1's 8-layer CNN alone took 1.1 s a step on the 2-core machine, all
    # three stages 2.1 s (results/codec-study/deeper-refine.md).
    stages: tuple[int, ...] | None = None
    precision: str = "auto"  # as in TrainSettings

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError("need at least one training step")
        if self.stages is not None and (not self.stages or min(self.stages) < 1):
            raise ValueError("the stages to train are numbered from 1")
        check_distortion_settings(self)
        check_precision(self.precision)


def with_quality_input(codec: CascadeCodec, model_id: str) -> CascadeCodec:
    """A copy of `codec` under `model_id` whose refine CNNs also see the quality level.

    The new input's weights are zero, so the copy's images equal the source's at
    every level; its symbol tables are the source's. A codec whose refine CNNs
    already see it (every stage's) is copied as it is, so that training continues
    from where its own round ended.
    """
    seeing = [s.refine_sees_quality for s in codec.config.stages]
    if any(seeing) and not all(seeing):
        raise ValueError(f"only some of {codec.config.model_id}'s refine CNNs see the quality level")
    state = codec.state_dict()
    if not all(seeing):  # widen each refine CNN's first layer by a zero-weight input
        for index in range(codec.num_stages):
            key = f"stages.{index}.refine.body.0.weight"
            weight = state[key]
            state[key] = torch.cat([weight, weight.new_zeros(weight.shape[0], 1, *weight.shape[2:])], dim=1)
    stages = tuple(replace(s, refine_sees_quality=True) for s in codec.config.stages)
    config = CodecConfig(model_id=model_id, stages=stages, qualities=codec.config.qualities)
    upgraded = CascadeCodec(config)
    upgraded.load_state_dict(state)
    upgraded.tables = [dict(t) for t in codec.tables]
    return upgraded


def with_deeper_refine(codec: CascadeCodec, layers: tuple[int, ...]) -> CascadeCodec:
    """A copy of `codec` whose stage k's refine CNN has `layers[k]` layers of 3×3.

    Why: a refine CNN of 4 layers sees 9×9 pixels, half of stage 1's 16-pixel
    block, and a CNN that sees more of a block and its neighbours might remove
    more of a block transform's low-rate artefacts (on `cdc-mix-5`'s stage 1 it
    bought 0.04–0.07 dB: results/codec-study/deeper-refine.md). The added
    layers go before the last one and start as the identity on the features
    (centre tap 1 on the diagonal, bias 0), so the copy starts from what the
    source learned. It is not quite the source: a LeakyReLU applied twice shrinks
    negative features once more, which training then absorbs. Layers are only
    added, never removed.
    """
    if len(layers) != codec.num_stages:
        raise ValueError(f"{codec.config.model_id} has {codec.num_stages} stages, not {len(layers)} refine depths")
    state = codec.state_dict()
    stages = []
    for index, (config, depth) in enumerate(zip(codec.config.stages, layers)):
        if depth < config.refine_layers:
            raise ValueError(f"stage {index + 1}'s refine CNN has {config.refine_layers} layers; it can only grow")
        stages.append(replace(config, refine_layers=depth))  # validates the reach
        prefix = f"stages.{index}.refine.body."
        last = 2 * (config.refine_layers - 1)  # Sequential index of the last convolution
        for name in ("weight", "bias"):
            state[f"{prefix}{2 * (depth - 1)}.{name}"] = state.pop(f"{prefix}{last}.{name}")
        features = config.refine_features
        identity = torch.zeros(features, features, 3, 3)
        identity[:, :, 1, 1] = torch.eye(features)
        for added in range(config.refine_layers - 1, depth - 1):
            state[f"{prefix}{2 * added}.weight"] = identity.clone()
            state[f"{prefix}{2 * added}.bias"] = torch.zeros(features)
    deeper = CascadeCodec(CodecConfig(model_id=codec.config.model_id, stages=tuple(stages), qualities=codec.config.qualities))
    deeper.load_state_dict(state)
    deeper.tables = [dict(t) for t in codec.tables]
    return deeper


def train_refine_at_all_qualities(
    codec: CascadeCodec,
    data_dir: str | Path,
    work_dir: str | Path,
    settings: RefineSettings,
    device: str = "cpu",
    out: str | Path | None = None,
    progress: bool = True,
) -> CascadeCodec:
    """Train (or resume training) `codec`'s refine CNNs at every quality level; optionally save to `out`.

    `codec` must see the quality level (`with_quality_input`); a checkpoint in
    `work_dir` replaces its parameters and tables.
    """
    if not all(s.refine_sees_quality for s in codec.config.stages):
        raise ValueError("the refine CNNs must see the quality level (with_quality_input)")
    trained = _trained_stages(codec, settings)

    def make_optimizer(c: CascadeCodec) -> torch.optim.Optimizer:
        c.requires_grad_(False)
        params = [p for index in trained for p in c.stages[index].refine.parameters()]
        for p in params:
            p.requires_grad_(True)
        return torch.optim.Adam(params, lr=settings.lr)

    def step(x: torch.Tensor, level: int, optimizer, use_amp: bool) -> str:
        mse = refine_step(codec, x, level, optimizer, settings, use_amp)
        return f"{-10 * math.log10(max(mse, 1e-10)):.2f}"

    every_level = level_schedule("all", len(codec.config.qualities), codec.config.nominal_quality)
    run = FineTuneRun(make_optimizer, step, every_level, desc="refine CNNs", figure="last stage's PSNR")
    return fine_tune(codec, run, data_dir, work_dir, settings, device, out, progress)


def _trained_stages(codec: CascadeCodec, settings: RefineSettings) -> list[int]:
    """0-based indices of the stages whose refine CNNs `settings` trains."""
    if settings.stages is None:
        return list(range(codec.num_stages))
    if max(settings.stages) > codec.num_stages:
        raise ValueError(f"{codec.config.model_id} has {codec.num_stages} stages, not {max(settings.stages)}")
    return sorted({number - 1 for number in settings.stages})


def refine_step(codec: CascadeCodec, x: torch.Tensor, level: int, optimizer, settings: RefineSettings, use_amp: bool) -> float:
    """One optimisation step of the refine CNNs `settings` trains at quality level `level`;
    returns the last trained stage's squared error (for the progress bar). Stages after
    the last trained one are not run; the others before it run without gradients."""
    trained = _trained_stages(codec, settings)
    scale = codec.scale(level)
    prev = codec.base(x)
    loss = torch.zeros((), device=x.device)
    for index, stage in enumerate(codec.stages[: max(trained) + 1]):
        with torch.no_grad():
            symbols = stage.quantize(stage.analyse(x, prev, scale))
            estimate = stage.linear_estimate(symbols, prev, scale)
            if index not in trained:
                prev = estimate + stage.correction(estimate, prev, scale)
                continue
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=use_amp):
            recon = estimate + stage.correction(estimate, prev, scale)
        mse = distortion(recon, x, "mse")
        loss = loss + lambda_for_step(stage.config.step * scale) * loss_distortion(recon, x, settings, mse)
        prev = recon.detach().float()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], 1.0)
    optimizer.step()
    return mse.item()


__all__ = ["RefineSettings", "with_quality_input", "with_deeper_refine", "train_refine_at_all_qualities", "refine_step"]
