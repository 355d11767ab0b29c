"""The codec study's pieces that do not need ../shared: tables, the decoder-only stage, the command."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from click.testing import CliRunner

from cdcodec.cli.main import cli
from cdcodec.experiments.codec_study.decoder_only import ResidualDecoder
from cdcodec.experiments.codec_study.report import ablation_table, envelope_bd, reading, training_table

from imagegen import smooth_image


def curve(shift_db: float, rate_factor: float = 1.0) -> list[dict]:
    rates = [0.1, 0.2, 0.4, 0.8]
    return [
        {"setting": f"q{i}", "bpp": r * rate_factor, "psnr": 25 + 4 * np.log2(r / 0.1) + shift_db, "ms_ssim": 0.9 + 0.02 * i}
        for i, r in enumerate(rates)
    ]


def test_bd_rate_of_a_curve_against_itself_is_zero_and_a_cheaper_curve_saves_bits():
    assert abs(envelope_bd(curve(0), curve(0), "psnr")) < 1e-9
    assert envelope_bd(curve(0), curve(0, rate_factor=0.9), "psnr") < -9.0


def test_fixed_rate_readings_interpolate_and_never_extrapolate():
    assert abs(reading(curve(0), "psnr", 0.2) - 29.0) < 1e-9
    assert reading(curve(0), "psnr", 5.0) is None


def test_tables_name_every_run_and_variant():
    curves = {"base": curve(0), "better": curve(0.5)}
    rows = [{"name": "base", "steps": 10, "note": "plain", "train_seconds": 60.0}, {"name": "better", "steps": 10, "note": "x", "train_seconds": None}]
    text = training_table(rows, curves, "base")
    assert "| base (plain) | 10 | 1.0 |" in text and "better (x)" in text
    assert "+0.0 %" in text  # the reference against itself
    ablation = ablation_table(curves, ("base", "better"))
    assert ablation.count("\n") == 3
    assert "BD-rate PSNR vs base | BD-rate MS-SSIM vs base | BD-rate PSNR vs better |" in ablation
    better_row = next(line for line in ablation.splitlines() if line.startswith("| better |"))
    assert [cell.strip() for cell in better_row.split("|")][-4:-2] == ["+0.0 %", "+0.0 %"]  # against itself


def test_stale_tables_are_refit_once_beside_the_cached_run(tmp_path, tiny_weights):
    """A study run whose tables predate the current latent coding is refit, not retrained."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from cdcodec.codec.weights import StaleTablesError, load_codec
    from cdcodec.experiments.codec_study.refit import current_weights, refit_path

    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in range(2):
        Image.fromarray(smooth_image(40, 48, seed=seed)).save(photos / f"{seed}.png")
    stale = tmp_path / "run" / "model.safetensors"
    stale.parent.mkdir()
    with safe_open(str(tiny_weights), framework="pt") as handle:  # the same model, tables without their layout field
        tensors = {k: handle.get_tensor(k) for k in handle.keys() if not k.endswith(".layout")}
        save_file(tensors, str(stale), metadata=handle.metadata())
    with pytest.raises(StaleTablesError):
        load_codec(stale)

    refit = current_weights(stale, photos, crop=16, table_crops=8)
    assert refit == refit_path(stale) and refit.exists()
    old, new = load_codec(tiny_weights)[0], load_codec(refit)[0]
    assert all(torch.equal(a, b) for a, b in zip(old.state_dict().values(), new.state_dict().values()))
    made = refit.stat().st_mtime_ns
    assert current_weights(stale, photos, crop=16, table_crops=8) == refit and refit.stat().st_mtime_ns == made  # made once
    assert current_weights(tiny_weights, photos) == tiny_weights  # current tables: used as they are


def test_untrained_residual_decoder_is_the_identity():
    pixels = np.random.default_rng(0).integers(0, 256, size=(9, 14, 3), dtype=np.uint8)
    assert np.array_equal(ResidualDecoder().eval().apply(pixels), pixels)


def test_codec_study_without_its_data_fails_with_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["experiment", "codec-study", "--data", str(tmp_path / "none"), "--images", str(tmp_path)])
    assert result.exit_code != 0
    assert "does not exist" in result.output and "Traceback" not in result.output


def test_the_shipped_models_stage1_steps_follow_its_chain_through_both_kinds_of_log():
    """The default model's chain in the manifest mixes `train` logs (one entry per stage)
    and a `train-refine` log (one run); every record's stage-1 steps are counted."""
    from cdcodec.experiments.codec_study.cli import _shipped_stage1, stage1_steps

    assert stage1_steps([{"stage": 1, "steps": 1800}, {"stage": 2, "steps": 1600}]) == 1800
    chain = [{"stage": 1, "steps": 1200}, {"stage": 2, "steps": 600}, {"stage": 1, "steps": 1800}, {"stage": 3, "steps": 600}]
    assert stage1_steps(chain) == 3000
    assert stage1_steps([{"stage": 2, "steps": 900}, {"stage": 3, "steps": 600}]) == 0
    assert stage1_steps({"steps": 1200, "train_seconds": 1.0}) == 1200
    steps, note = _shipped_stage1()
    assert steps > 0 and note.startswith("default model: ") and note.endswith("cdc-mse-1")
