"""`cdcodec train`: train a cascade stage by stage from a folder of photos;
`cdcodec refit-tables`: fit a trained model's symbol tables anew.

Resumable: the work folder holds a checkpoint; running the same command again
continues where it stopped. The finished model is written to --out as
safetensors; `--install` also copies it into trained/ and records it in the
manifest with the command, data, steps and device.
"""

from __future__ import annotations

import json
import platform
import shlex
import shutil
import sys
import time
from pathlib import Path

import click

from .output import CliError


@click.command()
@click.option("--data", "data_dir", type=click.Path(path_type=Path), required=True, help="Folder of training images (never the evaluation set).")
@click.option("--model-id", required=True, help="Stable id written into every file the model makes, e.g. cdc-mse-1.")
@click.option("--arch", default="cascade3", show_default=True, help="Architecture preset (see codec/presets.py).")
@click.option("--steps", default="1800,1600,1400", show_default=True, help="Training steps per stage, comma-separated.")
@click.option("--batch", default=16, show_default=True, help="Crops per step.")
@click.option("--crop", default=128, show_default=True, help="Crop side in pixels.")
@click.option("--lr", default=5e-4, show_default=True, help="Learning rate of the nonlinear parts.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--threads", default=None, type=int, help="CPU threads for torch (default: torch's choice).")
@click.option("--work-dir", type=click.Path(path_type=Path), default=None, help="Checkpoint folder (default ~/.cache/cdcodec/train/MODEL_ID).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Where to write the finished weights.")
@click.option("--install", is_flag=True, help="Copy the result into trained/ and record it in the manifest.")
@click.option("--default", "make_default", is_flag=True, help="With --install: make it the default model.")
@click.option("--seed", default=0, show_default=True)
@click.option("--intermediate-loss", default=0.0, show_default=True, help="Weight of a distortion term on each stage's linear estimate (per-layer loss).")
@click.option("--metric", type=click.Choice(["mse", "ms-ssim"]), default="mse", show_default=True, help="Distortion each stage is trained to lower: squared error, or 1 - MS-SSIM.")
@click.option("--init", "init_model", default=None, help="Fine-tune this model (a shipped model id or a .safetensors path) instead of starting from scratch; same --arch.")
@click.option("--note", default=None, help="With --install: a remark recorded in the manifest (e.g. how the run was interrupted).")
def train(data_dir, model_id, arch, steps, batch, crop, lr, device, threads, work_dir, out, install, make_default, seed, intermediate_loss, metric, init_model, note) -> None:
    """Train a model stage by stage (resumes from --work-dir)."""
    import torch

    from ..codec.pipeline import get_model
    from ..codec.presets import preset_config
    from ..codec.training.data import list_images
    from ..codec.training.train import TrainSettings, check_settings, describe_settings, train_cascade

    if threads:
        torch.set_num_threads(threads)
    try:
        steps_per_stage = tuple(int(s) for s in steps.split(","))
        config = preset_config(arch, model_id)
        list_images(data_dir)
        start_from = get_model(init_model).codec if init_model else None
    except (ValueError, LookupError, FileNotFoundError) as exc:
        raise CliError(str(exc).strip("'\"")) from None
    work_dir = work_dir or Path.home() / ".cache" / "cdcodec" / "train" / model_id
    out = out or work_dir / f"{model_id}.safetensors"
    settings = TrainSettings(steps_per_stage=steps_per_stage, batch=batch, crop=crop, lr=lr, seed=seed, intermediate_loss=intermediate_loss, metric=metric)
    try:
        check_settings(settings, config, start_from)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    started = time.time()
    train_cascade(config, data_dir, work_dir, settings, device=device, out=out, start_from=start_from)
    click.echo(f"wrote {out}", err=True)
    if install:
        record = {
            "command": "cdcodec train " + " ".join(shlex.quote(a) for a in sys.argv[2:]),
            "data": str(data_dir),
            "fine_tuned_from": init_model,
            "settings": describe_settings(settings),
            "device": _device_record(device),
            "seconds_this_invocation": round(time.time() - started),
            "log": json.loads((work_dir / "log.json").read_text()),
        }
        if note:
            record["note"] = note
        install_model(out, config.model_id, config.to_dict(), record, make_default)


@click.command("refit-tables")
@click.argument("model")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), required=True, help="Folder of training images (never the evaluation set).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Where to write the weights with the new tables.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--threads", default=None, type=int, help="CPU threads for torch (default: torch's choice).")
@click.option("--seed", default=0, show_default=True, help="Seed of the random training crops the tables are fitted on.")
@click.option("--crop", type=click.IntRange(min=16), default=128, show_default=True, help="Crop side in pixels.")
@click.option("--table-crops", type=click.IntRange(min=1), default=1024, show_default=True, help="Crops per (stage, quality level) table fit.")
@click.option("--install", is_flag=True, help="Copy the result into trained/, replacing MODEL's entry (MODEL must be a shipped id).")
def refit_tables(model, data_dir, out, device, threads, seed, crop, table_crops, install) -> None:
    """Fit MODEL's symbol tables anew on training crops, keeping its network.

    MODEL is a shipped model id or a .safetensors path; its old tables are not
    read, so this also upgrades a model whose tables predate a change of the
    coding contexts. Decoded images stay the same; file sizes change.
    """
    import torch

    from ..codec.training.data import list_images
    from ..codec.training.train import TrainSettings, describe_settings, refit_tables as refit
    from ..codec.weights import ModelNotFoundError, load_codec, manifest_entry, save_codec, shipped_file

    if threads:
        torch.set_num_threads(threads)
    is_file = model.endswith(".safetensors")
    if install and is_file:
        raise CliError("--install needs a shipped model id, not a weights file")
    try:
        list_images(data_dir)
        if is_file and not Path(model).is_file():
            raise ModelNotFoundError(f"weights file {model} does not exist")
        path = Path(model) if is_file else shipped_file(model)
        entry = None if is_file else manifest_entry(model)
        codec = load_codec(path, with_tables=False)[0]
    except (ValueError, LookupError, FileNotFoundError) as exc:
        raise CliError(str(exc).strip("'\"")) from None
    # Only the tables are fitted: the settings that matter are the crops (size, count, seed).
    settings = TrainSettings(steps_per_stage=(0,) * codec.num_stages, seed=seed, crop=crop, table_crops=table_crops, batch=min(16, table_crops))
    started = time.time()
    try:
        refit(codec, data_dir, settings, device=device)
    except (ValueError, RuntimeError) as exc:  # e.g. crops larger than the photos, no CUDA device
        raise CliError(str(exc).splitlines()[0]) from None
    save_codec(codec, out)
    click.echo(f"wrote {out}", err=True)
    if install:
        training = dict(entry.get("training", {}))
        training["tables"] = {
            "command": "cdcodec refit-tables " + " ".join(shlex.quote(a) for a in sys.argv[2:]),
            "data": str(data_dir),
            "settings": {k: v for k, v in describe_settings(settings).items() if k in ("batch", "crop", "table_crops", "seed")},
            "device": _device_record(device),
            "seconds": round(time.time() - started),
            "date": time.strftime("%Y-%m-%d"),
        }
        install_model(out, codec.config.model_id, codec.config.to_dict(), training, make_default=False)


def _device_record(device: str) -> str:
    import torch

    return device if device != "cpu" else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def install_model(weights: Path, model_id: str, config: dict, training: dict, make_default: bool) -> Path:
    """Copy weights into trained/ under a hash-prefixed name and update the manifest.

    A model id has one entry: installing it again replaces the entry and
    deletes the file the old entry named (when no other entry uses it), and
    takes the id off the manifest's "retired" list.
    """
    from ..codec.weights import MANIFEST, file_digest, read_manifest, trained_dir

    digest = file_digest(weights)
    target = trained_dir() / f"{model_id}-{digest[:8]}.safetensors"
    shutil.copyfile(weights, target)
    manifest = read_manifest()
    replaced = {m["file"] for m in manifest["models"] if m["id"] == model_id}
    manifest["models"] = [m for m in manifest["models"] if m["id"] != model_id]
    if manifest.get("retired"):  # a retired id shipped again is no longer retired
        manifest["retired"] = [m for m in manifest["retired"] if m["id"] != model_id]
    for name in replaced - {m["file"] for m in manifest["models"]} - {target.name}:
        (trained_dir() / name).unlink(missing_ok=True)
    manifest["models"].append(
        {"id": model_id, "file": target.name, "sha256": digest, "bytes": target.stat().st_size, "config": config, "training": training}
    )
    if make_default or not manifest.get("default"):
        manifest["default"] = model_id
    (trained_dir() / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return target
