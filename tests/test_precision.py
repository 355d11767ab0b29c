"""The training step's arithmetic: which precision each device gets, and that a
bfloat16-autocast step (the path CUDA training takes) trains float32 weights to
the same loss as a float32 step. CPU autocast runs the same code path."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from click.testing import CliRunner

from cdcodec.cli.main import cli
from cdcodec.codec.model import CascadeCodec
from cdcodec.codec.networks import lambda_for_step
from cdcodec.codec.presets import preset_config
from cdcodec.codec.training.data import CropSampler
from cdcodec.codec.training.joint_tune import JointTuneSettings
from cdcodec.codec.training.precision import arithmetic_name, uses_autocast
from cdcodec.codec.training.quality_refine import RefineSettings
from cdcodec.codec.training.stage_tune import StageTuneSettings
from cdcodec.codec.training.train import TrainSettings, check_settings, init_stage, stage_optimizer, train_cascade, training_step
from imagegen import photo_folder, smooth_image


def test_auto_is_bfloat16_on_cuda_only_and_the_choice_overrides_it():
    assert uses_autocast("cuda", "auto") and not uses_autocast("cpu", "auto")
    assert uses_autocast("cpu", "bf16") and not uses_autocast("cuda", "fp32")
    assert arithmetic_name(torch.device("cpu"), "auto") == "float32"
    assert arithmetic_name("cuda:0", "auto") == "bfloat16 autocast"


def test_an_unknown_precision_is_refused_by_every_kind_of_run():
    config = preset_config("tiny", "t")
    with pytest.raises(ValueError, match="precision must be one of"):
        check_settings(TrainSettings((1, 1), precision="fp16"), config)
    for make in (
        lambda: RefineSettings(steps=1, precision="half"),
        lambda: StageTuneSettings(stage=1, steps=1, precision="half"),
        lambda: JointTuneSettings(steps=1, stage_weights=(1.0,), precision="half"),
    ):
        with pytest.raises(ValueError, match="precision must be one of"):
            make()
    with pytest.raises(ValueError, match="precision must be one of"):
        uses_autocast("cpu", "float16")


def _stage_one(seed: int = 0, **lr):
    """A freshly initialised tiny codec, its stage 1's optimizer and λ, a crop batch, the settings."""
    torch.manual_seed(seed)
    sampler = CropSampler([smooth_image(48, 48, seed=s) for s in range(3)], crop=16, seed=seed)
    settings = TrainSettings((1, 1), batch=4, crop=16, pca_crops=8, **lr)
    codec = CascadeCodec(preset_config("tiny", "t"))
    init_stage(codec, 0, sampler, settings, "cpu")
    return codec, stage_optimizer(codec, 0, settings), lambda_for_step(codec.stages[0].config.step), sampler.batch(4), settings


def test_a_bfloat16_step_matches_the_float32_step_and_keeps_float32_weights():
    losses = {}
    for amp in (False, True):
        codec, optimizer, lam, x, settings = _stage_one()
        torch.manual_seed(1)  # the same rate noise for both
        loss, mse, bpp = training_step(codec, 0, x, optimizer, lam, settings, use_amp=amp)
        losses[amp] = loss.item()
        assert loss.dtype == mse.dtype == bpp.dtype == torch.float32
        assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in codec.parameters())
    # bfloat16 keeps 8 bits of mantissa: about 0.4% per value, far less over a sum.
    assert losses[True] == pytest.approx(losses[False], rel=0.02)


def test_bfloat16_steps_lower_the_loss_as_float32_steps_do():
    def mean_losses_first_and_last(amp: bool) -> tuple[float, float]:
        # A learning rate ten times train's, so that 40 steps on one batch show a clear fall.
        codec, optimizer, lam, x, settings = _stage_one(seed=2, lr=5e-3, transform_lr=1e-3)
        torch.manual_seed(3)
        losses = [training_step(codec, 0, x, optimizer, lam, settings, use_amp=amp)[0].item() for _ in range(40)]
        return sum(losses[:5]) / 5, sum(losses[-5:]) / 5

    (fp32_first, fp32_last), (bf16_first, bf16_last) = mean_losses_first_and_last(False), mean_losses_first_and_last(True)
    assert fp32_last < 0.9 * fp32_first and bf16_last < 0.9 * bf16_first
    assert bf16_last == pytest.approx(fp32_last, rel=0.05)


def test_train_command_records_the_arithmetic_it_trained_in(tmp_path, monkeypatch):
    """`train --precision bf16 --install` trains on CPU under autocast and the
    manifest says so; a bad choice is refused before any work."""
    trained = tmp_path / "trained"
    trained.mkdir()
    (trained / "manifest.json").write_text(json.dumps({"default": None, "models": []}))
    monkeypatch.setattr("cdcodec.codec.weights.trained_dir", lambda: trained)
    folder = photo_folder(tmp_path)
    base = ["train", "--data", str(folder), "--model-id", "amp-test", "--arch", "tiny", "--steps", "1,1",
            "--batch", "2", "--crop", "16", "--work-dir", str(tmp_path / "w")]
    bad = CliRunner().invoke(cli, [*base, "--precision", "fp16"])
    assert bad.exit_code == 2 and "fp16" in bad.stderr and not (tmp_path / "w").exists()
    result = CliRunner().invoke(cli, [*base, "--precision", "bf16", "--install"])
    assert result.exit_code == 0, result.output
    entry = json.loads((trained / "manifest.json").read_text())["models"][0]
    assert entry["training"]["arithmetic"] == "bfloat16 autocast"
    assert entry["training"]["settings"]["precision"] == "bf16"


def test_a_run_trained_under_autocast_decodes_like_any_other(tmp_path):
    from cdcodec.codec.pipeline import decode, encode

    folder = photo_folder(tmp_path)
    out = tmp_path / "bf16.safetensors"
    settings = dataclasses.replace(TrainSettings((2, 2), batch=2, crop=16, pca_crops=8, table_crops=8), precision="bf16")
    train_cascade(preset_config("tiny", "t-bf16"), folder, tmp_path / "w", settings, out=out, progress=False)
    image = smooth_image(20, 20, seed=5)
    assert decode(encode(image, model=out), model=out).shape == image.shape


@pytest.mark.parametrize("precision, expected", [("bf16", True), ("auto", False), ("fp32", False)])
def test_fine_tuning_runs_step_in_the_arithmetic_asked_for(tmp_path, precision, expected):
    """train-stage, train-refine and train-joint share `fine_tune`'s loop: it hands each
    step the autocast choice the settings name (CPU here, so auto is float32)."""
    from cdcodec.codec.training.fine_tune import FineTuneRun, fine_tune

    seen = []
    codec = CascadeCodec(preset_config("tiny", "t"))
    run = FineTuneRun(
        make_optimizer=lambda c: torch.optim.Adam(c.stages[0].refine.parameters(), lr=1e-4),
        step=lambda x, level, optimizer, use_amp: seen.append(use_amp) or "",
        level_at=lambda number: 0,
        desc="test",
        figure="none",
    )
    settings = RefineSettings(steps=2, batch=2, crop=16, precision=precision)
    fine_tune(codec, run, photo_folder(tmp_path), tmp_path / "w", settings, progress=False)
    assert seen == [expected, expected]
