"""`cdcodec train`: train a cascade stage by stage from a folder of photos;
`cdcodec train-stage`: fine-tune one stage of a trained model (optionally lapped);
`cdcodec train-joint`: fine-tune every stage of a trained model at once, a loss at each;
`cdcodec refit-tables`: fit a trained model's symbol tables anew;
`cdcodec add-quality`: give a trained model one more, finer quality level;
`cdcodec retire-model`: take a superseded model out of trained/.

Resumable: the work folder holds a checkpoint; running the same command again
continues where it stopped. The finished model is written to --out as
safetensors; `--install` also copies it into trained/ and records it in the
manifest with the command, data, steps and device.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click

from .output import CliError

# Options the training commands share.
_data_option = click.option("--data", "data_dir", type=click.Path(path_type=Path), required=True, help="Folder of training images (never the evaluation set).")
_device_option = click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
_precision_option = click.option(
    "--precision", type=click.Choice(["auto", "bf16", "fp32"]), default="auto", show_default=True,
    help="Arithmetic of a training step: bf16 runs it under bfloat16 autocast (float32 weights); auto is bf16 on cuda, fp32 on cpu.")
_threads_option = click.option("--threads", default=None, type=int, help="CPU threads for torch (default: torch's choice).")
_work_dir_option = click.option("--work-dir", type=click.Path(path_type=Path), default=None, help="Checkpoint folder (default ~/.cache/cdcodec/train/MODEL_ID).")
_out_option = click.option("--out", type=click.Path(path_type=Path), default=None, help="Where to write the finished weights.")
_install_option = click.option("--install", is_flag=True, help="Copy the result into trained/ and record it in the manifest.")
_default_option = click.option("--default", "make_default", is_flag=True, help="With --install: make it the default model.")
_ms_ssim_share_option = click.option("--ms-ssim-share", type=click.FloatRange(0, 1), default=None, help="With --metric mixed: the share of the distortion that is 1 - MS-SSIM (default 0.5).")
_METRICS = click.Choice(["mse", "ms-ssim", "mixed"])


def _fine_tune_options(command):
    """The options of the commands that fine-tune part of a trained MODEL (train-refine, train-stage)."""
    for option in reversed((
        click.option("--batch", type=click.IntRange(min=1), default=16, show_default=True, help="Crops per step."),
        click.option("--crop", type=click.IntRange(min=16), default=128, show_default=True, help="Crop side in pixels."),
        click.option("--metric", type=_METRICS, default="mse", show_default=True, help="Distortion to lower (as for train)."),
        _ms_ssim_share_option,
        _device_option,
        _precision_option,
        _threads_option,
        click.option("--seed", default=0, show_default=True),
        _work_dir_option,
        _out_option,
    )):
        command = option(command)
    return command


def _start_run(metric: str, ms_ssim_share: float | None, threads: int | None, model_id: str, work_dir: Path | None, out: Path | None) -> tuple[Path, Path, float]:
    """What every training command does first: refuse --ms-ssim-share without --metric
    mixed, set torch's threads, and default the checkpoint folder and the output.
    Returns (work folder, output, the MS-SSIM share to train with)."""
    import torch

    if ms_ssim_share is not None and metric != "mixed":
        raise CliError("--ms-ssim-share needs --metric mixed")
    if threads:
        torch.set_num_threads(threads)
    if out is not None:
        _check_out_folder(out)
    work_dir = work_dir or Path.home() / ".cache" / "cdcodec" / "train" / model_id
    return work_dir, out or work_dir / f"{model_id}.safetensors", 0.5 if ms_ssim_share is None else ms_ssim_share


@click.command()
@_data_option
@click.option("--model-id", required=True, help="Stable id written into every file the model makes, e.g. cdc-mse-1.")
@click.option("--arch", default="cascade3", show_default=True, help="Architecture preset (see codec/presets.py).")
@click.option("--steps", default="1800,1600,1400", show_default=True, help="Training steps per stage, comma-separated.")
@click.option("--batch", default=16, show_default=True, help="Crops per step.")
@click.option("--crop", default=128, show_default=True, help="Crop side in pixels.")
@click.option("--lr", default=5e-4, show_default=True, help="Learning rate of the nonlinear parts.")
@_device_option
@_precision_option
@_threads_option
@_work_dir_option
@_out_option
@_install_option
@_default_option
@click.option("--seed", default=0, show_default=True)
@click.option("--intermediate-loss", default=0.0, show_default=True, help="Weight of a distortion term on each stage's linear estimate (per-layer loss).")
@click.option("--metric", type=_METRICS, default="mse", show_default=True, help="Distortion each stage is trained to lower: squared error, 1 - MS-SSIM, or both (see --ms-ssim-share).")
@_ms_ssim_share_option
@click.option("--init", "init_model", default=None, help="Fine-tune this model (a shipped model id or a .safetensors path) instead of starting from scratch; same --arch.")
@click.option("--note", default=None, help="With --install: a remark recorded in the manifest (e.g. how the run was interrupted).")
def train(data_dir, model_id, arch, steps, batch, crop, lr, device, precision, threads, work_dir, out, install, make_default, seed, intermediate_loss, metric, ms_ssim_share, init_model, note) -> None:
    """Train a model stage by stage (resumes from --work-dir)."""
    from ..codec.pipeline import get_model
    from ..codec.presets import preset_config
    from ..codec.training.data import list_images
    from ..codec.training.train import TrainSettings, check_settings, describe_settings, train_cascade

    work_dir, out, share = _start_run(metric, ms_ssim_share, threads, model_id, work_dir, out)
    try:
        steps_per_stage = tuple(int(s) for s in steps.split(","))
        config = preset_config(arch, model_id)
        list_images(data_dir)
        start_from = get_model(init_model).codec if init_model else None
    except (ValueError, LookupError, FileNotFoundError) as exc:
        raise CliError(str(exc).strip("'\"")) from None
    settings = TrainSettings(steps_per_stage=steps_per_stage, batch=batch, crop=crop, lr=lr, seed=seed, intermediate_loss=intermediate_loss, metric=metric, ms_ssim_share=share,
                             precision=precision)
    try:
        check_settings(settings, config, start_from)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    started = time.time()
    train_cascade(config, data_dir, work_dir, settings, device=device, out=out, start_from=start_from)
    click.echo(f"wrote {out}", err=True)
    if install:
        record = _training_record("train", data_dir, init_model, describe_settings(settings), device, started, work_dir, note)
        install_model(out, config.model_id, config.to_dict(), record, make_default)


def _training_record(command: str, data_dir: Path, fine_tuned_from: str | None, settings: dict, device: str, started: float, work_dir: Path, note: str | None) -> dict:
    """What the manifest records of a training run: the command as typed, its data,
    settings, device and the arithmetic it trained in, time and the run's log."""
    from ..codec.training.precision import arithmetic_name

    record = {
        "command": f"cdcodec {command} " + " ".join(shlex.quote(a) for a in sys.argv[2:]),
        "data": str(data_dir),
        "fine_tuned_from": fine_tuned_from,
        "settings": settings,
        "device": _device_record(device),
        "arithmetic": arithmetic_name(device, settings.get("precision", "auto")),
        "seconds_this_invocation": round(time.time() - started),
        "log": json.loads((work_dir / "log.json").read_text()),
    }
    if note:
        record["note"] = note
    return record


@click.command("train-refine")
@click.argument("model")
@_data_option
@click.option("--model-id", required=True, help="Id of the new model, e.g. cdc-mix-5.")
@click.option("--steps", type=click.IntRange(min=1), default=1200, show_default=True, help="Training steps (each at the next quality level in turn).")
@click.option("--lr", default=2.5e-4, show_default=True, help="Learning rate of the refine CNNs.")
@click.option("--refine-layers", default=None, help="Deepen the refine CNNs first: layers per stage, comma-separated (e.g. 8,4,4); added layers start as the identity.")
@click.option("--stages", "stage_list", default=None, help="Train only these stages' refine CNNs, comma-separated from 1 (default: all).")
@_fine_tune_options
@_install_option
@_default_option
@click.option("--note", default=None, help="With --install: a remark recorded in the manifest.")
def train_refine(model, data_dir, model_id, steps, batch, crop, lr, metric, refine_layers, stage_list, ms_ssim_share, device, precision, threads, seed, work_dir, out, install, make_default, note) -> None:
    """Make a model whose refine CNNs know the quality level, from trained MODEL.

    The new model's refine CNNs see the quality level as an extra input and are
    trained at every level in turn, everything else frozen (see
    codec/training/quality_refine.py); MODEL's symbol tables are kept.
    A MODEL made this way (its refine CNNs already see the level) is trained
    further. --refine-layers first makes the CNNs deeper (a stage with B-pixel
    blocks takes at most B/2 layers); --stages trains only some of them.
    Resumes from --work-dir.
    """
    from ..codec.pipeline import get_model
    from ..codec.training.data import list_images
    from ..codec.training.quality_refine import RefineSettings, train_refine_at_all_qualities, with_deeper_refine, with_quality_input
    from ..codec.training.train import describe_settings

    work_dir, out, share = _start_run(metric, ms_ssim_share, threads, model_id, work_dir, out)
    try:
        trained = None if stage_list is None else _parse_numbers(stage_list, "--stages")
        settings = RefineSettings(steps=steps, batch=batch, crop=crop, lr=lr, seed=seed, metric=metric, ms_ssim_share=share, stages=trained,
                                  precision=precision)
        list_images(data_dir)
        codec = with_quality_input(get_model(model).codec, model_id)
        if refine_layers is not None:
            codec = with_deeper_refine(codec, _parse_numbers(refine_layers, "--refine-layers"))
    except (ValueError, LookupError, FileNotFoundError) as exc:
        raise CliError(str(exc).strip("'\"")) from None
    started = time.time()
    try:
        train_refine_at_all_qualities(codec, data_dir, work_dir, settings, device=device, out=out)
    except (ValueError, RuntimeError) as exc:  # e.g. crops larger than the photos, no CUDA device
        raise CliError(str(exc).splitlines()[0]) from None
    click.echo(f"wrote {out}", err=True)
    if install:
        record = _training_record("train-refine", data_dir, model, describe_settings(settings), device, started, work_dir, note)
        record["tables"] = {"note": f"the symbol tables of {model}, unchanged"}
        install_model(out, model_id, codec.config.to_dict(), record, make_default)


@click.command("train-stage")
@click.argument("model")
@_data_option
@click.option("--model-id", required=True, help="Id of the new model.")
@click.option("--stage", type=click.IntRange(min=1), required=True, help="The stage to fine-tune (1 = the first).")
@click.option("--overlap", type=click.IntRange(min=0), default=None, help="Widen the stage's transform kernels to reach this many pixels beyond the block (new margins start at zero).")
@click.option("--steps", type=click.IntRange(min=1), default=600, show_default=True, help="Training steps.")
@click.option("--levels", default="all", show_default=True,
              help="Which quality levels the steps train at: 'all' in turn, 'trained' (the level the model was trained at) only, "
                   "or one weight per level, e.g. 2,2,2,1,1 (levels 0-2 twice per cycle, 3-4 once).")
@click.option("--lr", default=2.5e-4, show_default=True, help="Learning rate of the encoder branch and refine CNN.")
@click.option("--transform-lr", default=1e-4, show_default=True, help="Learning rate of the block transform.")
@_fine_tune_options
def train_stage(model, data_dir, model_id, stage, overlap, steps, levels, batch, crop, lr, transform_lr, metric, ms_ssim_share, device, precision, threads, seed, work_dir, out) -> None:
    """Fine-tune one stage of trained MODEL at every quality level, the others frozen.

    The whole stage trains (transform, encoder branch, refine CNN, rate model;
    see codec/training/stage_tune.py). --overlap first widens its transform
    into a lapped one, starting exactly as MODEL. The stage's symbols change,
    so fit the result's tables before use: cdcodec refit-tables OUT. Resumes
    from --work-dir.
    """
    from ..codec.pipeline import get_model
    from ..codec.training.data import list_images
    from ..codec.training.fine_tune import level_schedule
    from ..codec.training.stage_tune import StageTuneSettings, tune_stage_at_all_qualities, with_overlap

    work_dir, out, share = _start_run(metric, ms_ssim_share, threads, model_id, work_dir, out)
    try:
        settings = StageTuneSettings(stage=stage, steps=steps, levels=levels, batch=batch, crop=crop, lr=lr, transform_lr=transform_lr, seed=seed,
                                     metric=metric, ms_ssim_share=share, precision=precision)
        list_images(data_dir)
        source = get_model(model).codec
        if stage > source.num_stages:
            raise ValueError(f"{source.config.model_id} has stages 1 to {source.num_stages}, not {stage}")
        current = source.config.stages[stage - 1].overlap
        codec = with_overlap(source, stage, current if overlap is None else overlap, model_id)
        level_schedule(levels, len(codec.config.qualities), codec.config.nominal_quality)  # validates --levels
    except (ValueError, LookupError, FileNotFoundError) as exc:
        raise CliError(str(exc).strip("'\"")) from None
    _fine_tune_then_say(lambda: tune_stage_at_all_qualities(codec, data_dir, work_dir, settings, device=device, out=out), model, out)


@click.command("train-joint")
@click.argument("model")
@_data_option
@click.option("--model-id", required=True, help="Id of the new model.")
@click.option("--steps", type=click.IntRange(min=1), default=600, show_default=True, help="Training steps.")
@click.option("--stage-weights", default=None, help="Weight of each stage's loss in the sum, comma-separated from stage 1 (default: 1 for every stage).")
@click.option("--levels", default="all", show_default=True,
              help="Which quality levels the steps train at: 'all' in turn, 'trained' (the level the model was trained at) only, "
                   "or one weight per level, e.g. 2,2,2,1,1 (levels 0-2 twice per cycle, 3-4 once).")
@click.option("--lr", default=2.5e-4, show_default=True, help="Learning rate of the encoder branches and refine CNNs.")
@click.option("--transform-lr", default=1e-4, show_default=True, help="Learning rate of the block transforms.")
@_fine_tune_options
def train_joint(model, data_dir, model_id, steps, stage_weights, levels, batch, crop, lr, transform_lr, metric, ms_ssim_share, device, precision, threads, seed, work_dir, out) -> None:
    """Fine-tune every stage of trained MODEL at once, with a loss at every stage.

    Each stage's loss is its rate plus λ times its distortion, as in
    train-stage; the weighted sum trains all stages together, so an earlier
    stage also learns from what its image costs the later ones (see
    codec/training/joint_tune.py). All symbols change, so fit the result's
    tables before use: cdcodec refit-tables OUT. Resumes from --work-dir.
    """
    from ..codec.pipeline import get_model
    from ..codec.training.data import list_images
    from ..codec.training.fine_tune import level_schedule
    from ..codec.training.joint_tune import JointTuneSettings, tune_jointly
    from ..codec.training.train import renamed

    work_dir, out, share = _start_run(metric, ms_ssim_share, threads, model_id, work_dir, out)
    try:
        source = get_model(model).codec
        weights = (1.0,) * source.num_stages if stage_weights is None else _parse_weights(stage_weights)
        if len(weights) != source.num_stages:
            raise ValueError(f"{source.config.model_id} has {source.num_stages} stages: --stage-weights needs {source.num_stages} numbers, not {len(weights)}")
        settings = JointTuneSettings(steps=steps, stage_weights=weights, levels=levels, batch=batch, crop=crop, lr=lr, transform_lr=transform_lr,
                                     seed=seed, metric=metric, ms_ssim_share=share, precision=precision)
        list_images(data_dir)
        codec = renamed(source, model_id)
        level_schedule(levels, len(codec.config.qualities), codec.config.nominal_quality)  # validates --levels
    except (ValueError, LookupError, FileNotFoundError) as exc:
        raise CliError(str(exc).strip("'\"")) from None
    _fine_tune_then_say(lambda: tune_jointly(codec, data_dir, work_dir, settings, device=device, out=out), model, out)


def _fine_tune_then_say(run, model: str, out: Path) -> None:
    """Run a fine-tuning that keeps MODEL's tables (train-stage, train-joint), failing
    with one line, and say where the result went and that its tables need refitting."""
    try:
        run()
    except (ValueError, RuntimeError) as exc:  # e.g. crops larger than the photos, no CUDA device
        raise CliError(str(exc).splitlines()[0]) from None
    click.echo(f"wrote {out} (its tables are {model}'s: refit them with cdcodec refit-tables)", err=True)


def _parse_weights(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--stage-weights takes numbers separated by commas, not {text!r}") from None


def _parse_numbers(text: str, option: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"{option} takes whole numbers separated by commas, not {text!r}") from None


_table_fit_options = (
    _data_option,
    click.option("--out", type=click.Path(path_type=Path), required=True, help="Where to write the weights with the new tables."),
    _device_option,
    _threads_option,
    click.option("--seed", default=0, show_default=True, help="Seed of the random training crops the tables are fitted on."),
    click.option("--crop", type=click.IntRange(min=16), default=128, show_default=True, help="Crop side in pixels."),
    click.option("--table-crops", type=click.IntRange(min=1), default=1024, show_default=True, help="Crops per (stage, quality level) table fit."),
)


def _with_table_fit_options(command):
    for option in reversed(_table_fit_options):
        command = option(command)
    return command


def _check_out_folder(out: Path) -> None:
    """Refuse an output whose folder does not exist before any work, not after it."""
    if not out.parent.is_dir():
        raise CliError(f"cannot write {out}: {out.parent} is not a folder")


def _load_for_tables(model: str, data_dir: Path, out: Path, threads: int | None, with_tables: bool):
    """(codec, manifest entry or None) for the table-fitting commands, after checking
    that MODEL (a shipped id or a .safetensors path), the data folder and the output's
    folder exist."""
    import torch

    from ..codec.training.data import list_images
    from ..codec.weights import ModelNotFoundError, load_codec, manifest_entry, shipped_file

    _check_out_folder(out)
    if threads:
        torch.set_num_threads(threads)
    is_file = model.endswith(".safetensors")
    try:
        list_images(data_dir)
        if is_file and not Path(model).is_file():
            raise ModelNotFoundError(f"weights file {model} does not exist")
        path = Path(model) if is_file else shipped_file(model)
        entry = None if is_file else manifest_entry(model)
        return load_codec(path, with_tables=with_tables)[0], entry
    except (ValueError, LookupError, FileNotFoundError) as exc:
        raise CliError(str(exc).strip("'\"")) from None


def _table_record(command: str, data_dir: Path, settings, device: str, started: float, **extra) -> dict:
    """The manifest's record of a table fit: command, data, crops, device, time."""
    from ..codec.training.train import describe_settings

    return {
        "command": f"cdcodec {command} " + " ".join(shlex.quote(a) for a in sys.argv[2:]),
        "data": str(data_dir),
        "settings": {k: v for k, v in describe_settings(settings).items() if k in ("batch", "crop", "table_crops", "seed")},
        **extra,
        "device": _device_record(device),
        "seconds": round(time.time() - started),
        "date": time.strftime("%Y-%m-%d"),
    }


def _fit_or_fail(fit):
    """fit()'s result; its errors (e.g. crops larger than the photos, no CUDA device) as one line."""
    try:
        return fit()
    except (ValueError, RuntimeError) as exc:
        raise CliError(str(exc).splitlines()[0]) from None


@click.command("refit-tables")
@click.argument("model")
@_with_table_fit_options
@click.option(
    "--align-signs", is_flag=True,
    help="Fit tables for the sign-aligned coder: a symbol of a checkerboard's second half is coded negated where its "
    "first-half neighbours lean negative, so its sign costs less than a bit (same pixels; 0.2-0.8% fewer bytes for "
    "the default model on four Kodak images, results/codec-study/sign-alignment.md).",
)
@click.option("--install", is_flag=True, help="Copy the result into trained/, replacing MODEL's entry (MODEL must be a shipped id).")
def refit_tables(model, data_dir, out, device, threads, seed, crop, table_crops, align_signs, install) -> None:
    """Fit MODEL's symbol tables anew on training crops, keeping its network.

    MODEL is a shipped model id or a .safetensors path; its old tables are not
    read, so this also upgrades a model whose tables predate a change of the
    coding contexts. Decoded images stay the same; file sizes change.
    """
    from ..codec.training.train import TrainSettings, refit_tables as refit
    from ..codec.weights import save_codec

    if install and model.endswith(".safetensors"):
        raise CliError("--install needs a shipped model id, not a weights file")
    codec, entry = _load_for_tables(model, data_dir, out, threads, with_tables=False)
    # Only the tables are fitted: the settings that matter are the crops (size, count, seed).
    settings = TrainSettings(steps_per_stage=(0,) * codec.num_stages, seed=seed, crop=crop, table_crops=table_crops, batch=min(16, table_crops))
    started = time.time()
    _fit_or_fail(lambda: refit(codec, data_dir, settings, device=device, sign_aligned=align_signs))
    save_codec(codec, out)
    click.echo(f"wrote {out}", err=True)
    if install:
        training = dict(entry.get("training", {}))
        training["tables"] = _table_record("refit-tables", data_dir, settings, device, started, sign_aligned=align_signs)
        install_model(out, codec.config.model_id, codec.config.to_dict(), training, make_default=False)


@click.command("add-quality")
@click.argument("model")
@click.option("--factor", type=click.FloatRange(min=0, min_open=True), required=True,
              help="Step factor of the new level, below MODEL's finest (0.3536 = 2^-1.5 extends the shipped ladder of 2^(k/2) by one level).")
@click.option("--model-id", required=True, help="Id of the new model, which its files name in their header.")
@_with_table_fit_options
@click.option("--install", is_flag=True, help="Copy the result into trained/ as a new entry, with MODEL's training record and this command.")
@_default_option
def add_quality(model, factor, model_id, data_dir, out, device, threads, seed, crop, table_crops, install, make_default) -> None:
    """Make a model with one more, finer quality level than MODEL: the same
    networks and tables, plus the new level's tables fitted on training crops.

    Every existing level keeps its number and tables, so its files decode to the
    same pixels and have the same payload (the header names the new model). The
    networks are not retrained at the new step, so check its points before
    shipping it (results/codec-study/finer-level.md did so for the default model).
    """
    from ..codec.training.train import TrainSettings, with_finer_quality
    from ..codec.weights import available_models, save_codec

    if model_id in available_models():
        raise CliError(f"model id {model_id!r} is already shipped: choose a new one")
    if make_default and not install:
        raise CliError("--default needs --install")
    codec, entry = _load_for_tables(model, data_dir, out, threads, with_tables=True)
    settings = TrainSettings(steps_per_stage=(0,) * codec.num_stages, seed=seed, crop=crop, table_crops=table_crops, batch=min(16, table_crops))
    started = time.time()
    made = _fit_or_fail(lambda: with_finer_quality(codec, factor, model_id, data_dir, settings, device=device))
    save_codec(made, out)
    click.echo(f"wrote {out}: quality levels 0-{len(made.config.qualities) - 1}", err=True)
    if install:
        training = dict((entry or {}).get("training", {}))
        training["added_quality"] = _table_record("add-quality", data_dir, settings, device, started, factor=factor, from_model=model)
        install_model(out, model_id, made.config.to_dict(), training, make_default=make_default)


@click.command("retire-model")
@click.argument("model")
@click.option("--replaced-by", default=None, help="The shipped model that supersedes MODEL (required when MODEL is the default: it becomes the default).")
@click.option("--weights-commit", default="HEAD", show_default=True, help="A git commit whose trained/ holds MODEL's weights file, recorded so its files stay decodable.")
def retire_model_command(model, replaced_by, weights_commit) -> None:
    """Take MODEL out of trained/, keeping its manifest record under "retired".

    Files MODEL made then fail to decode with one line that names the git
    command which restores its weights. Needs a git checkout of cdcodec: the
    commit is checked to hold the very file the manifest names (same sha256).
    """
    from ..codec.weights import ModelNotFoundError, manifest_entry, trained_dir

    try:
        entry = manifest_entry(model)
        commit = commit_holding(trained_dir(), entry["file"], entry["sha256"], weights_commit)
        retire_model(model, commit, replaced_by)
    except (ValueError, LookupError, ModelNotFoundError) as exc:
        raise CliError(str(exc).strip("'\"")) from None
    click.echo(f"retired {model}: its weights stay in commit {commit[:12]}", err=True)


def commit_holding(folder: Path, name: str, sha256: str, rev: str) -> str:
    """The full hash of git revision `rev`, after checking that its copy of folder/name has this sha256."""

    def git(*args: str, text: bool = True):
        try:
            return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, check=True, text=text).stdout
        except (OSError, subprocess.CalledProcessError):
            return None

    commit = git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if commit is None:
        raise ValueError(f"{rev!r} is not a commit of a git checkout holding {folder}")
    commit = commit.strip()
    blob = git("show", f"{commit}:./{name}", text=False)
    if blob is None or hashlib.sha256(blob).hexdigest() != sha256:
        raise ValueError(f"commit {commit[:12]} does not hold the manifest's {name} (commit it first)")
    return commit


def retire_model(model_id: str, weights_commit: str, replaced_by: str | None) -> None:
    """Move a shipped model's manifest record to "retired" and delete its weights file.

    The record keeps how the model was trained, plus the commit that still
    holds its weights and the model that replaced it. Retiring the default
    needs `replaced_by`, which becomes the default.
    """
    from ..codec.weights import read_manifest

    manifest = read_manifest()
    entry = next((m for m in manifest["models"] if m["id"] == model_id), None)
    if entry is None:
        raise ValueError(f"{model_id!r} is not a shipped model")
    if replaced_by is not None and (replaced_by == model_id or all(m["id"] != replaced_by for m in manifest["models"])):
        raise ValueError(f"--replaced-by {replaced_by!r} is not another shipped model")
    if manifest.get("default") == model_id:
        if replaced_by is None:
            raise ValueError(f"{model_id!r} is the default model: name the model that replaces it with --replaced-by")
        manifest["default"] = replaced_by
    manifest["models"] = [m for m in manifest["models"] if m["id"] != model_id]
    record = dict(entry, weights_commit=weights_commit)
    if replaced_by is not None:
        record["replaced_by"] = replaced_by
    manifest["retired"] = [m for m in manifest.get("retired", []) if m["id"] != model_id] + [record]
    _save_manifest(manifest, dropped_files={entry["file"]})


def _device_record(device: str) -> str:
    import torch

    return device if device != "cpu" else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def install_model(weights: Path, model_id: str, config: dict, training: dict, make_default: bool) -> Path:
    """Copy weights into trained/ under a hash-prefixed name and update the manifest.

    A model id has one entry: installing it again replaces the entry and
    deletes the file the old entry named (when no other entry uses it), and
    takes the id off the manifest's "retired" list.
    """
    from ..codec.weights import file_digest, read_manifest, trained_dir

    digest = file_digest(weights)
    target = trained_dir() / f"{model_id}-{digest[:8]}.safetensors"
    shutil.copyfile(weights, target)
    manifest = read_manifest()
    replaced = {m["file"] for m in manifest["models"] if m["id"] == model_id}
    manifest["models"] = [m for m in manifest["models"] if m["id"] != model_id]
    if manifest.get("retired"):  # a retired id shipped again is no longer retired
        manifest["retired"] = [m for m in manifest["retired"] if m["id"] != model_id]
    manifest["models"].append(
        {"id": model_id, "file": target.name, "sha256": digest, "bytes": target.stat().st_size, "config": config, "training": training}
    )
    if make_default or not manifest.get("default"):
        manifest["default"] = model_id
    _save_manifest(manifest, dropped_files=replaced)
    return target


def _save_manifest(manifest: dict, dropped_files: set[str]) -> None:
    """Write trained/manifest.json, then delete those of `dropped_files` no shipped entry names.

    In that order, so an interruption can leave an unused file behind but never
    a manifest that names a deleted one.
    """
    from ..codec.weights import MANIFEST, trained_dir

    (trained_dir() / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    for name in dropped_files - {m["file"] for m in manifest["models"]}:
        (trained_dir() / name).unlink(missing_ok=True)
