"""Bringing a cached study model's symbol tables up to the current latent coding.

The study's runs take CPU hours to train. When only the way latents are coded
changes (format 4's checkerboard contexts), their networks are still what was
measured: refitting the tables takes minutes, keeps every decoded image the
same and makes the model measurable again with real file bytes.
"""

from __future__ import annotations

from pathlib import Path

from ...bitstream.container import FORMAT_VERSION
from ...codec.training.train import TrainSettings, refit_tables
from ...codec.weights import StaleTablesError, load_codec, save_codec

#: `cdcodec refit-tables`' defaults: crops per (stage, quality level) table and their side.
TABLE_CROPS = 1024
CROP = 128


def refit_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}-format{FORMAT_VERSION}{path.suffix}")


def refit_command(path: Path, data_dir: Path) -> str:
    """The `cdcodec refit-tables` command that makes the same file by hand (seed 0, the defaults)."""
    return f"cdcodec refit-tables {path} --data {data_dir} --threads 1 --out {refit_path(path)}"


def has_current_tables(path: Path) -> bool:
    try:
        load_codec(path)
    except StaleTablesError:
        return False
    return True


def current_weights(path: Path, data_dir: Path, crop: int = CROP, table_crops: int = TABLE_CROPS) -> Path:
    """`path` if its tables are current, else a copy beside it with refitted tables (made once).

    With the defaults this is exactly what `refit_command` writes.
    """
    if has_current_tables(path):
        return path
    refit = refit_path(path)
    if refit.exists():
        return refit
    codec, _ = load_codec(path, with_tables=False)
    settings = TrainSettings(steps_per_stage=(0,) * codec.num_stages, crop=crop, table_crops=table_crops, batch=min(16, table_crops))
    refit_tables(codec, data_dir, settings)
    partial = refit.with_suffix(".partial")
    save_codec(codec, partial)
    partial.replace(refit)
    return refit
