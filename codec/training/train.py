"""Stage-by-stage training of the cascade, as in the cascade-decoder paper.

Stage 1 is trained alone; then it is frozen and stage 2 learns to code what
stage 1 leaves, and so on. Before a stage trains, its block transform is set to
the PCA basis of the residual it will code (or copied from the previous stage,
see StageConfig.basis); after it trains, its integer symbol tables are fitted
from the symbols it really produces, at every quality level. The loss of stage k is
its own rate plus λ_k times the distortion after stage k, with λ_k matched to
the stage's quantizer step. With `metric="ms-ssim"` the distortion is
1 − MS-SSIM instead of the squared error (a model for users who compare
rate–SSIM); `metric="mixed"` weighs both, `ms_ssim_share` of it MS-SSIM (one
model that aims at both curves). `start_from` fine-tunes a trained model
instead of starting from scratch.

Runs on CPU or CUDA (bfloat16 autocast on CUDA, and on CPU when asked:
precision.py), checkpoints to a work folder every few minutes, and resumes
from there: run the same command again.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from pytorch_msssim import ms_ssim
from tqdm import tqdm

from ..model import CascadeCodec, CodecConfig, stage_prior, symbols_to_array
from ..networks import lambda_for_step
from ..similarity import MS_SSIM_LAMBDA_SCALE
from ..weights import save_codec
from .checkpoint import load_checkpoint, save_checkpoint
from .data import CropSampler
from .fitting import extract_blocks, fit_tables, pca_basis
from .precision import check_precision, uses_autocast

CHECKPOINT = "checkpoint.safetensors"


@dataclass(frozen=True)
class TrainSettings:
    steps_per_stage: tuple[int, ...]
    batch: int = 16
    crop: int = 128
    lr: float = 5e-4
    transform_lr: float = 2e-5
    pca_crops: int = 512
    table_crops: int = 1024
    checkpoint_seconds: float = 120.0
    seed: int = 0
    # Weight of a second distortion term on each stage's linear estimate (before
    # its refine CNN): the recursive paper's "loss at every decoder layer" carried
    # over to the codec. 0 trains on the final reconstruction only.
    intermediate_loss: float = 0.0
    # "mse", "ms-ssim" or "mixed": the distortion each stage's loss weighs against its rate.
    metric: str = "mse"
    # With metric "mixed": the share of the distortion that is 1 − MS-SSIM (in
    # squared-error units, see MS_SSIM_LAMBDA_SCALE); the rest is squared error.
    ms_ssim_share: float = 0.5
    # "auto" (bfloat16 autocast on CUDA, float32 on CPU), "bf16" or "fp32": the
    # arithmetic of a training step (precision.py says why CPU defaults to float32).
    precision: str = "auto"


METRICS = ("mse", "ms-ssim", "mixed")
#: pytorch-msssim's default 11-pixel window needs sides above 160 for its five
#: scales; 7 pixels fit the 128² training crops (96 < 128).
MS_SSIM_TRAIN_WINDOW = 7


def check_settings(settings: TrainSettings, config: CodecConfig, start_from: CascadeCodec | None = None) -> None:
    """Raise ValueError, before any work, for settings this architecture cannot train with
    (or, with `start_from`, a model to fine-tune that is not of this architecture)."""
    if len(settings.steps_per_stage) != len(config.stages):
        raise ValueError(f"need {len(config.stages)} step counts, one per stage; got {len(settings.steps_per_stage)}")
    if start_from is not None and start_from.config.stages != config.stages:
        raise ValueError("the model to fine-tune has a different architecture")
    check_distortion_settings(settings)
    check_precision(settings.precision)


def check_distortion_settings(settings) -> None:
    """Raise ValueError for a metric this module does not know, a mixed share outside
    [0, 1], or crops too small for MS-SSIM's five scales when the loss has MS-SSIM in
    it (`settings`: anything with crop, metric and ms_ssim_share)."""
    if settings.metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {settings.metric!r}")
    if settings.metric == "mixed" and not 0 <= settings.ms_ssim_share <= 1:
        raise ValueError(f"the MS-SSIM share must lie in [0, 1], got {settings.ms_ssim_share}")
    smallest = (MS_SSIM_TRAIN_WINDOW - 1) * 2 ** 4 + 1
    if ms_ssim_share(settings) > 0 and settings.crop < smallest:
        raise ValueError(f"MS-SSIM training needs crops of at least {smallest} pixels (its five scales)")


def distortion(recon: torch.Tensor, x: torch.Tensor, metric: str) -> torch.Tensor:
    """The distortion a stage is trained to lower, for pixels in [0, 1]."""
    if metric == "mse":
        return torch.mean((recon.float() - x) ** 2)
    if metric == "ms-ssim":
        return 1 - ms_ssim(recon.float(), x, data_range=1.0, win_size=MS_SSIM_TRAIN_WINDOW)
    raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")


def ms_ssim_share(settings: TrainSettings) -> float:
    """The share of a stage's loss distortion that is 1 − MS-SSIM: 0, 1, or the mixed share."""
    return {"mse": 0.0, "ms-ssim": 1.0}.get(settings.metric, settings.ms_ssim_share)


def loss_distortion(recon: torch.Tensor, x: torch.Tensor, settings: TrainSettings, mse: torch.Tensor | None = None) -> torch.Tensor:
    """The distortion a stage's loss weighs against its rate, in squared-error units.

    Squared error and MS_SSIM_LAMBDA_SCALE × (1 − MS-SSIM), mixed by
    ms_ssim_share(settings); a term with no weight is not computed. `mse`, if
    given, is recon's squared error already computed (the training step needs
    it for the progress bar anyway).
    """
    share = ms_ssim_share(settings)
    total = torch.zeros((), device=x.device)
    if share < 1:
        total = total + (1 - share) * (distortion(recon, x, "mse") if mse is None else mse)
    if share > 0:
        total = total + share * MS_SSIM_LAMBDA_SCALE * distortion(recon, x, "ms-ssim")
    return total


def train_cascade(
    config: CodecConfig,
    data_dir: str | Path,
    work_dir: str | Path,
    settings: TrainSettings,
    device: str = "cpu",
    out: str | Path | None = None,
    progress: bool = True,
    start_from: CascadeCodec | None = None,
) -> CascadeCodec:
    """Train (or resume training) every stage; optionally write the final weights to `out`.

    `start_from`, a trained codec of the same architecture, fine-tunes: its
    parameters are the starting point of every stage, which then trains
    without re-initialising its basis or rate model. A resumed run keeps what
    its checkpoint holds.
    """
    check_settings(settings, config, start_from)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(settings.seed)
    dev = torch.device(device)
    codec = CascadeCodec(config)
    state = {"stage": 0, "step": 0, "initialised": False, "log": [], "seconds": 0.0, "fine_tune": False}
    optimizer_state = None
    ckpt = work_dir / CHECKPOINT
    if ckpt.exists():
        state, optimizer_state = load_checkpoint(ckpt, codec)
        _say(f"resuming from {ckpt}: stage {state['stage'] + 1}, step {state['step']}", progress)
    elif start_from is not None:
        codec.load_state_dict(start_from.state_dict())
        state["fine_tune"] = True
    codec.to(dev)
    sampler = CropSampler.from_folder(data_dir, settings.crop, seed=settings.seed + 1000 * state["stage"] + state["step"], progress=progress)

    while state["stage"] < codec.num_stages:
        k = state["stage"]
        if not state["initialised"]:
            if not state.get("fine_tune"):
                init_stage(codec, k, sampler, settings, dev)
            state.update(initialised=True, step=0)
            optimizer_state = None
        optimizer = stage_optimizer(codec, k, settings)
        if optimizer_state is not None:
            optimizer.load_state_dict(optimizer_state)
            optimizer_state = None
        _train_stage(codec, k, sampler, settings, optimizer, state, ckpt, dev, progress)
        codec.tables[k] = {codec.config.nominal_quality: _fit_stage_tables(codec, k, sampler, settings, dev)}
        state["log"].append(
            {
                "stage": k + 1,
                "steps": state["step"],
                "train_seconds": round(state.get("seconds", 0.0), 3),
                "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
        )
        state.update(stage=k + 1, step=0, initialised=False, seconds=0.0)
        save_checkpoint(ckpt, codec, None, state)
        _say(f"stage {k + 1} finished", progress)
    codec.eval()
    fill_tables(codec, sampler, settings, dev, progress)
    if out is not None:
        save_codec(codec.cpu(), out)
    (work_dir / "log.json").write_text(json.dumps(state["log"], indent=2))
    return codec


def stage_optimizer(codec: CascadeCodec, k: int, settings: TrainSettings) -> torch.optim.Optimizer:
    for i, stage in enumerate(codec.stages):
        stage.requires_grad_(i == k)
    return torch.optim.Adam(stage_param_groups(codec.stages[k], settings))


def stage_param_groups(stage, settings) -> list[dict]:
    """One stage's parameters in Adam groups at their learning rates: the block
    transform at `settings.transform_lr`, the rate model at 1e-2, the encoder
    branch and refine CNN at `settings.lr`."""
    return [
        {"params": list(stage.transform.parameters()), "lr": settings.transform_lr},
        {"params": list(stage.prior.parameters()), "lr": 1e-2},
        {"params": list(stage.encoder.parameters()) + list(stage.refine.parameters()), "lr": settings.lr},
    ]


@torch.no_grad()
def _previous(codec: CascadeCodec, k: int, x: torch.Tensor) -> torch.Tensor:
    """Reconstruction after the frozen stages 1..k, exactly as the decoder builds it."""
    prev = codec.base(x)
    for stage in codec.stages[:k]:
        prev = stage.synthesise(stage.quantize(stage.analyse(x, prev)), prev)
    return prev


@torch.no_grad()
def init_stage(codec: CascadeCodec, k: int, sampler: CropSampler, settings: TrainSettings, dev) -> None:
    stage = codec.stages[k]
    codec.eval()
    if stage.config.basis == "previous":
        previous = codec.stages[k - 1].config if k > 0 else None
        if previous is None or (previous.block, previous.overlap) != (stage.config.block, stage.config.overlap):
            raise ValueError(f"stage {k + 1} copies the previous stage's basis, which needs the same block size and overlap")
        stage.transform.load_state_dict(codec.stages[k - 1].transform.state_dict())
    else:
        blocks = []
        for _ in range(max(1, settings.pca_crops // settings.batch)):
            x = sampler.batch(settings.batch).to(dev)
            blocks.append(extract_blocks(x - _previous(codec, k, x), stage.config.block).cpu())
        stage.transform.reset_orthonormal(pca_basis(torch.cat(blocks)).to(dev))
    # Start the rate model at the symbols' real spread (Laplace scale = mean |y|),
    # so the first steps see a sensible rate instead of learning it from scratch.
    spread = torch.zeros(stage.latent_channels, device=dev)
    for _ in range(4):
        x = sampler.batch(settings.batch).to(dev)
        spread += stage.analyse(x, _previous(codec, k, x)).abs().mean(dim=(0, 2, 3)) / 4
    stage.prior.log_scale.copy_(spread.clamp_min(0.05).log())


def _lr_factor(step: int, total: int) -> float:
    warmup = min(200, total // 10 + 1)
    if step < warmup:
        return (step + 1) / warmup
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def _train_stage(codec, k, sampler, settings, optimizer, state, ckpt, dev, progress) -> None:
    stage = codec.stages[k]
    total = settings.steps_per_stage[k]
    lam = lambda_for_step(stage.config.step)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    last_save = time.monotonic()
    use_amp = uses_autocast(dev, settings.precision)
    bar = tqdm(total=total, initial=state["step"], desc=f"stage {k + 1}", disable=not progress, dynamic_ncols=True)
    started = time.monotonic() - state.get("seconds", 0.0)  # training time of this stage, across resumes
    while state["step"] < total:
        x = sampler.batch(settings.batch).to(dev, non_blocking=True)
        factor = _lr_factor(state["step"], total)
        for group, base in zip(optimizer.param_groups, base_lrs):
            group["lr"] = base * factor
        loss, mse, bpp = training_step(codec, k, x, optimizer, lam, settings, use_amp)
        state["step"] += 1
        state["seconds"] = time.monotonic() - started
        bar.update(1)
        if state["step"] % 10 == 0:
            psnr = -10 * math.log10(max(mse.item(), 1e-10))
            bar.set_postfix(loss=f"{loss.item():.4f}", bpp=f"{bpp.item():.3f}", psnr=f"{psnr:.2f}")
        if time.monotonic() - last_save > settings.checkpoint_seconds:
            for group, base in zip(optimizer.param_groups, base_lrs):
                group["lr"] = base
            save_checkpoint(ckpt, codec, optimizer, state)
            last_save = time.monotonic()
    bar.close()
    for group, base in zip(optimizer.param_groups, base_lrs):
        group["lr"] = base


def training_step(codec: CascadeCodec, k: int, x: torch.Tensor, optimizer, lam: float, settings: TrainSettings, use_amp: bool):
    """One optimisation step of stage k (the others frozen) on batch x: returns (loss, mse, bpp)
    as `stage_loss` forms them, after clipping the gradient and stepping `optimizer`."""
    loss, mse, bpp = stage_loss(codec, k, x, lam, settings, use_amp)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(codec.stages[k].parameters(), 1.0)
    optimizer.step()
    return loss, mse, bpp


def stage_loss(codec: CascadeCodec, k: int, x: torch.Tensor, lam: float, settings: TrainSettings, use_amp: bool):
    """Stage k's training loss on batch x, with the stage in training mode: (loss, mse, bpp).

    The loss is the stage's estimated rate in bits per pixel plus λ times the
    distortion after the stage (loss_distortion; and, with
    settings.intermediate_loss, a second distortion term on its linear
    estimate). bfloat16 autocast when use_amp. The returned mse is for the
    progress bar, whatever the metric.
    """
    stage = codec.stages[k]
    codec.eval()
    stage.train()
    prev = _previous(codec, k, x)
    with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=use_amp):
        recon, bits, estimate = stage(x, prev)
    mse = distortion(recon, x, "mse")
    bpp = bits.float() / (x.shape[0] * x.shape[2] * x.shape[3])
    loss = bpp + lam * loss_distortion(recon, x, settings, mse)
    if settings.intermediate_loss:
        loss = loss + settings.intermediate_loss * lam * loss_distortion(estimate, x, settings)
    return loss, mse, bpp


@torch.no_grad()
def _fit_stage_tables(codec, k, sampler, settings, dev, quality: int | None = None, sign_aligned: bool = False):
    """Tables for stage k at one quality level, from the symbols it produces on training crops."""
    codec.eval()
    symbol_batches, prior_batches, grids = [], [], []
    for _ in range(max(1, settings.table_crops // settings.batch)):
        x = sampler.batch(settings.batch).to(dev)
        per_stage = codec.analyse(x, k + 1, quality)
        q, previous = per_stage[k], per_stage[k - 1] if k > 0 else None
        for i in range(x.shape[0]):
            symbol_batches.append(symbols_to_array(q[i : i + 1]))
            prev_i = None if previous is None else previous[i : i + 1]
            prior_batches.append(stage_prior(prev_i, tuple(q.shape[-2:]), q.shape[1]))
            grids.append(tuple(q.shape[-2:]))
    return fit_tables(symbol_batches, prior_batches, grids, sign_aligned)


def fill_tables(codec: CascadeCodec, sampler: CropSampler, settings: TrainSettings, dev, progress: bool = True, sign_aligned: bool = False) -> None:
    """Fit the tables every (stage, quality level) still lacks (`fit_tables` says what `sign_aligned` does)."""
    for quality in range(len(codec.config.qualities)):
        for k in range(codec.num_stages):
            if quality not in codec.tables[k]:
                codec.tables[k][quality] = _fit_stage_tables(codec, k, sampler, settings, dev, quality, sign_aligned)
                _say(f"stage {k + 1}, quality level {quality}: tables fitted", progress)


def refit_tables(
    codec: CascadeCodec, data_dir: str | Path, settings: TrainSettings, device: str = "cpu", progress: bool = True, sign_aligned: bool = False
) -> CascadeCodec:
    """Fit every (stage, quality level) table of a trained codec anew, keeping its network.

    For when the way symbols are coded changes (the coding contexts) but the
    networks that make them do not: the model's images stay bit-identical,
    only its file sizes change (`sign_aligned`: tables for the sign-aligned
    coder, `fit_tables`). Deterministic for a given seed, data and device.
    """
    codec.tables = [{} for _ in range(codec.num_stages)]
    return _fill_from_folder(codec, data_dir, settings, device, progress, sign_aligned)


def _fill_from_folder(codec: CascadeCodec, data_dir: str | Path, settings: TrainSettings, device: str, progress: bool, sign_aligned: bool) -> CascadeCodec:
    """`fill_tables` on crops of the photos in `data_dir`, on `device`; the codec back on the CPU."""
    dev = torch.device(device)
    codec.to(dev).eval()
    sampler = CropSampler.from_folder(data_dir, settings.crop, seed=settings.seed, progress=progress)
    fill_tables(codec, sampler, settings, dev, progress, sign_aligned)
    return codec.cpu()


def renamed(codec: CascadeCodec, model_id: str, qualities: tuple[float, ...] | None = None) -> CascadeCodec:
    """A copy of `codec` (parameters and tables) under `model_id`, to make a new model from;
    `qualities` replaces its quality factors (tables are kept by level number)."""
    config = CodecConfig(model_id=model_id, stages=codec.config.stages, qualities=codec.config.qualities if qualities is None else qualities)
    copy = CascadeCodec(config)
    copy.load_state_dict(codec.state_dict())
    copy.tables = [dict(t) for t in codec.tables]
    return copy


def with_finer_quality(
    codec: CascadeCodec, factor: float, model_id: str, data_dir: str | Path, settings: TrainSettings, device: str = "cpu", progress: bool = True
) -> CascadeCodec:
    """A copy of `codec` under `model_id` with one more quality level, step factor
    `factor`, finer than every level it has, and that level's tables fitted.

    The new level goes last, so every existing level keeps its number (files
    store it) and its tables, and so its pixels and payload bytes; only the new level's tables
    are fitted, for the coder the others were fitted for (sign-aligned or not).
    The networks are not retrained: refine CNNs that see the quality level
    (StageConfig.refine_sees_quality) see a log2 factor beyond the trained range.
    """
    finest = min(codec.config.qualities)
    if not factor < finest:
        raise ValueError(f"the new level's factor must be below the model's finest, {finest:g} (levels keep their numbers only at the end)")
    aligned = {t.sign_aligned for per_quality in codec.tables for t in per_quality.values()}
    if len(aligned) != 1 or any(len(per_quality) != len(codec.config.qualities) for per_quality in codec.tables):
        raise ValueError("the model's tables are incomplete or mixed (refit-tables them first)")
    copy = renamed(codec, model_id, codec.config.qualities + (factor,))
    return _fill_from_folder(copy, data_dir, settings, device, progress, sign_aligned=aligned.pop())


def _say(message: str, progress: bool) -> None:
    if progress:
        tqdm.write(message)


def describe_settings(settings: TrainSettings) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.__dict__.items()}


__all__ = ["TrainSettings", "train_cascade", "fill_tables", "refit_tables", "renamed", "with_finer_quality", "describe_settings", "check_settings", "distortion", "loss_distortion", "METRICS"]
