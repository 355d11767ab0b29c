"""Shared fixtures: a tiny untrained-but-complete model, synthetic images, paths to shared data.

The tiny model has real PCA-initialised transforms and real fitted tables, so
every code path of the pipeline runs, in well under a second, without the
shipped weights and without ../shared.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cdcodec.cli.main import cli
from cdcodec.codec.model import CascadeCodec, CodecConfig, stage_prior, symbols_to_array
from cdcodec.codec.pipeline import LoadedModel, decode, encode
from cdcodec.codec.presets import preset_config
from cdcodec.codec.training.fitting import extract_blocks, fit_tables, pca_basis
from cdcodec.codec.weights import load_codec, save_codec
from imagegen import smooth_image

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def build_tiny_model(path: Path, config: CodecConfig | None = None, margins: float = 0.0) -> None:
    """A codec of `config` (default: the "tiny" preset) with PCA bases and fitted tables at
    `path`; `margins` > 0 draws the margins of lapped transforms (StageConfig.overlap) with
    that spread, so that they matter."""
    torch.manual_seed(0)
    codec = CascadeCodec(config or preset_config("tiny", "test-tiny"))
    codec.eval()
    images = torch.stack(
        [torch.from_numpy(smooth_image(32, 32, seed=s)).permute(2, 0, 1).float() / 255 for s in range(8)]
    )
    with torch.no_grad():
        prev = codec.base(images)
        for index, stage in enumerate(codec.stages):
            if stage.config.basis == "previous":
                stage.transform.load_state_dict(codec.stages[index - 1].transform.state_dict())
            else:
                stage.transform.reset_orthonormal(pca_basis(extract_blocks(images - prev, stage.config.block)))
                if margins and stage.config.overlap:
                    _draw_margins(stage.transform, margins)
            prev = stage.synthesise(stage.quantize(stage.analyse(images, prev)), prev)
        for quality in range(len(codec.config.qualities)):
            per_stage = codec.analyse(images, codec.num_stages, quality)
            for index, q in enumerate(per_stage):
                grid = tuple(q.shape[-2:])
                symbols = [symbols_to_array(q[i : i + 1]) for i in range(len(q))]
                priors = [stage_prior(None if index == 0 else per_stage[index - 1][i : i + 1], grid, q.shape[1]) for i in range(len(q))]
                codec.tables[index][quality] = fit_tables(symbols, priors, [grid] * len(symbols))
    save_codec(codec, path)


@torch.no_grad()
def _draw_margins(transform, spread: float) -> None:
    inner = slice(transform.overlap, transform.overlap + transform.block)
    for layer in (transform.analysis, transform.synthesis):
        noise = torch.randn_like(layer.weight) * spread
        noise[:, :, inner, inner] = 0
        layer.weight.add_(noise)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    build_tiny_model(path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tiny_weights) -> LoadedModel:
    codec, digest = load_codec(tiny_weights)
    return LoadedModel(codec, digest)


@pytest.fixture(scope="session")
def kodak_dir() -> Path:
    path = SHARED / "kodak"
    if not path.is_dir():
        pytest.skip("../shared/data/kodak is not available (evaluation data lives outside the repository)")
    return path


def check_resumed_refit_round_trip(resume, work: Path, out: Path, folder: Path, tmp_path: Path) -> None:
    """After a fine-tuning command ran 3 steps: `resume()` (the same command for 5 steps)
    continues to step 5, and the result, its tables refit, decodes a lossless file exactly."""
    result = resume()
    assert result.exit_code == 0, result.output
    assert json.loads((work / "log.json").read_text())["steps"] == 5
    refit = tmp_path / "refit.safetensors"
    result = CliRunner().invoke(cli, ["refit-tables", str(out), "--data", str(folder), "--crop", "16", "--table-crops", "4", "--out", str(refit)])
    assert result.exit_code == 0, result.output
    image = smooth_image(24, 32, seed=4)
    assert np.array_equal(decode(encode(image, model=refit, lossless=True), model=refit), image)
