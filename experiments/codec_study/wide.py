"""Ablation (a): the shipped stage 1 alone, with finer quantizers to reach the cascade's rates.

The shipped model's quality levels only span stage 1's own rate range. To ask
what stage 1 alone would give at the rates of two or three stages, this adds
finer step factors to a one-stage copy of it and fits their symbol tables on
the training photos (the networks are unchanged: this is the same stage, not a
model retrained for those rates).
"""

from __future__ import annotations

from pathlib import Path

from ...codec.model import CascadeCodec, CodecConfig
from ...codec.pipeline import get_model
from ...codec.training.data import CropSampler
from ...codec.training.train import TrainSettings, fill_tables
from ...codec.weights import save_codec
from .refit import has_current_tables

#: Step factors below the shipped 0.5, continuing its 2^(-1/2) ladder down to ~0.06.
FINER = (0.3536, 0.25, 0.1768, 0.125, 0.0884, 0.0625)


def widen_stage1(data_dir: Path, out: Path, model=None) -> Path:
    """Write a one-stage model: the shipped stage 1 with the extra quality levels FINER."""
    if out.exists() and has_current_tables(out):
        return out  # else made before the latent coding changed: rebuild from the shipped model
    shipped = get_model(model).codec
    config = CodecConfig(
        model_id=f"{shipped.config.model_id}-stage1-wide",
        stages=shipped.config.stages[:1],
        qualities=tuple(shipped.config.qualities) + FINER,
    )
    codec = CascadeCodec(config)
    codec.stages[0].load_state_dict(shipped.stages[0].state_dict())
    codec.tables[0] = dict(shipped.tables[0])
    codec.eval()
    fill_tables(codec, CropSampler.from_folder(data_dir, 128, seed=7), TrainSettings(steps_per_stage=(0,)), "cpu")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_codec(codec, out)
    return out
