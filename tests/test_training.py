"""Training runs end to end on a tiny folder, checkpoints, resumes and yields a working model."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from cdcodec.cli.main import cli
from cdcodec.codec.pipeline import decode, encode
from cdcodec.codec.presets import preset_config
from cdcodec.codec.training.checkpoint import load_checkpoint
from cdcodec.codec.training.fine_tune import level_schedule
from cdcodec.codec.training.train import CHECKPOINT, TrainSettings, train_cascade
from cdcodec.codec.model import CascadeCodec
from cdcodec.codec.weights import load_codec
from imagegen import photo_folder, smooth_image


def settings(steps):
    return TrainSettings(steps_per_stage=steps, batch=2, crop=16, pca_crops=8, table_crops=8)


def test_train_resume_and_use(tmp_path):
    folder = photo_folder(tmp_path)
    work = tmp_path / "work"
    config = preset_config("tiny", "test-train")
    train_cascade(config, folder, work, settings((2, 2)), progress=False)
    first_log = json.loads((work / "log.json").read_text())
    assert [entry["stage"] for entry in first_log] == [1, 2]

    # A longer schedule continues from the checkpoint instead of starting over.
    out = tmp_path / "model.safetensors"
    train_cascade(config, folder, work, settings((2, 2)), out=out, progress=False)
    progress, _ = load_checkpoint(work / CHECKPOINT, CascadeCodec(config))
    assert progress["stage"] == 2 and len(progress["log"]) == 2

    image = smooth_image(20, 20, seed=7)
    data = encode(image, model=out)
    assert decode(data, model=out).shape == image.shape


def test_interrupted_stage_resumes_mid_stage(tmp_path, monkeypatch):
    import torch

    from cdcodec.codec.training import train as train_module
    from cdcodec.codec.training.checkpoint import save_checkpoint

    folder = photo_folder(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    config = preset_config("tiny", "test-train")
    # A checkpoint as an interrupted run leaves it: stage 1 initialised, 5 of 6 steps done.
    codec = CascadeCodec(config)
    optimizer = train_module.stage_optimizer(codec, 0, settings((6, 1)))
    codec.stages[0].prior.bits(torch.zeros(1, 48, 2, 2)).backward()
    optimizer.step()
    save_checkpoint(work / CHECKPOINT, codec, optimizer, {"stage": 0, "step": 5, "initialised": True, "log": []})

    initialised = []
    real_init = train_module.init_stage
    monkeypatch.setattr(train_module, "init_stage", lambda c, k, *a: (initialised.append(k), real_init(c, k, *a)))
    train_cascade(config, folder, work, settings((6, 1)), progress=False)
    assert initialised == [1]  # stage 1 was not re-initialised, only stage 2 started fresh
    log = json.loads((work / "log.json").read_text())
    assert [(entry["stage"], entry["steps"]) for entry in log] == [(1, 6), (2, 1)]


def test_train_command_installs_nothing_by_default(tmp_path):
    folder = photo_folder(tmp_path)
    out = tmp_path / "m.safetensors"
    result = CliRunner().invoke(
        cli,
        ["train", "--data", str(folder), "--model-id", "cli-test", "--arch", "tiny", "--steps", "1,1",
         "--batch", "2", "--crop", "16", "--work-dir", str(tmp_path / "w"), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert out.exists()
    bad = CliRunner().invoke(cli, ["train", "--data", str(tmp_path / "none"), "--model-id", "x"])
    assert bad.exit_code == 1 and "does not exist" in bad.stderr


def test_per_layer_loss_and_selu_variants_train_and_record_their_time(tmp_path):
    """The codec-study recipes (loss on the linear estimate too; SELU) train end to end,
    change what is learned, and the log records each stage's training seconds."""
    import dataclasses

    import torch

    from cdcodec.codec.stage import StageConfig

    folder = photo_folder(tmp_path)
    base = preset_config("tiny", "test-plain")
    selu = dataclasses.replace(base, model_id="test-selu", stages=tuple(StageConfig(**{**s.to_dict(), "activation": "selu"}) for s in base.stages))
    plain_out, layered_out, selu_out = (tmp_path / f"{n}.safetensors" for n in ("plain", "layered", "selu"))
    train_cascade(base, folder, tmp_path / "plain", settings((3, 3)), out=plain_out, progress=False)
    layered = dataclasses.replace(settings((3, 3)), intermediate_loss=0.5)
    train_cascade(base, folder, tmp_path / "layered", layered, out=layered_out, progress=False)
    codec = train_cascade(selu, folder, tmp_path / "selu", settings((3, 3)), out=selu_out, progress=False)
    assert isinstance(codec.stages[0].refine.body[1], torch.nn.SELU)

    from cdcodec.codec.weights import load_codec

    plain, _ = load_codec(plain_out)
    other, _ = load_codec(layered_out)
    weights = [dict(c.stages[0].refine.named_parameters())["body.0.weight"] for c in (plain, other)]
    assert not torch.equal(*weights)
    log = json.loads((tmp_path / "plain" / "log.json").read_text())
    assert all(entry["train_seconds"] > 0 for entry in log)
    image = smooth_image(20, 20, seed=3)
    assert decode(encode(image, model=selu_out), model=selu_out).shape == image.shape


def test_throughput_times_every_stage():
    import numpy as np

    from cdcodec.codec.training.data import CropSampler
    from cdcodec.codec.training.throughput import measure_throughput

    sampler = CropSampler([smooth_image(40, 48, seed=s) for s in range(2)], crop=16)
    config = preset_config("tiny", "test-throughput")
    results = measure_throughput(config, sampler, settings((1, 1)), steps=2, warmup=1)
    assert [r.stage for r in results] == [1, 2]
    for r in results:
        assert r.steps == 2 and r.step_seconds > 0 and r.data_seconds > 0
        row = r.as_dict(batch=2, crop=16)
        assert np.isclose(row["images_per_second"], 2 * row["steps_per_second"], rtol=1e-2)
        assert np.isclose(row["steps_per_second"], 1 / (r.step_seconds + r.data_seconds), rtol=1e-2)


def test_ms_ssim_fine_tune_starts_from_the_given_model(tmp_path, monkeypatch):
    """--metric ms-ssim --init: every stage starts from the given weights (no fresh basis or rate model) and trains."""
    import torch

    from cdcodec.codec.training import train as train_module
    from cdcodec.codec.weights import load_codec

    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in range(2):
        Image.fromarray(smooth_image(120, 120, seed=seed)).save(folder / f"{seed}.png")
    config = preset_config("tiny", "test-msssim")
    start = train_cascade(config, folder, tmp_path / "mse", settings((1, 1)), progress=False)
    before = {k: v.clone() for k, v in start.state_dict().items()}
    initialised = []
    monkeypatch.setattr(train_module, "init_stage", lambda c, k, *a: initialised.append(k))
    tuned = dataclasses.replace(settings((2, 2)), crop=112, metric="ms-ssim")
    out = tmp_path / "msssim.safetensors"
    train_cascade(config, folder, tmp_path / "tuned", tuned, out=out, progress=False, start_from=start)
    assert initialised == []
    after = load_codec(out)[0].state_dict()
    for k in range(2):
        assert not torch.equal(before[f"stages.{k}.refine.body.0.weight"], after[f"stages.{k}.refine.body.0.weight"])
    image = smooth_image(20, 20, seed=3)
    assert decode(encode(image, model=out), model=out).shape == image.shape


def test_ms_ssim_training_rejects_crops_too_small_for_its_scales(tmp_path):
    folder = photo_folder(tmp_path)
    result = CliRunner().invoke(
        cli, ["train", "--data", str(folder), "--model-id", "x", "--arch", "tiny", "--steps", "1,1",
              "--crop", "64", "--metric", "ms-ssim", "--work-dir", str(tmp_path / "w")])
    assert result.exit_code == 1 and "at least 97 pixels" in result.stderr
    assert not (tmp_path / "w").exists()


def test_distortion_metrics():
    """Both training distortions are 0 for a perfect reconstruction; MS-SSIM's ignores what MSE weighs most."""
    import torch

    from cdcodec.codec.training.train import distortion

    torch.manual_seed(0)
    x = torch.rand(2, 3, 112, 112)
    assert distortion(x, x, "mse").item() == 0 and abs(distortion(x, x, "ms-ssim").item()) < 1e-5
    brighter = (x + 0.05).clamp(0, 1)  # a small uniform shift: large squared error, structure untouched
    noisy = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    assert distortion(brighter, x, "mse") > distortion(noisy, x, "mse") * 0.8
    assert distortion(brighter, x, "ms-ssim") < distortion(noisy, x, "ms-ssim")


def test_mixed_loss_distortion_lies_between_its_two_terms():
    """--metric mixed: share 0 is the squared error, share 1 the scaled 1 - MS-SSIM, shares between mix them linearly."""
    from cdcodec.codec.training.train import MS_SSIM_LAMBDA_SCALE, distortion, loss_distortion

    torch.manual_seed(1)
    x = torch.rand(2, 3, 112, 112)
    recon = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    mse = distortion(recon, x, "mse").item()
    ms = MS_SSIM_LAMBDA_SCALE * distortion(recon, x, "ms-ssim").item()
    at = lambda share: loss_distortion(recon, x, TrainSettings((1,), metric="mixed", ms_ssim_share=share)).item()
    assert abs(at(0) - mse) < 1e-7 and abs(at(1) - ms) < 1e-7
    assert abs(at(0.25) - (0.75 * mse + 0.25 * ms)) < 1e-7
    assert abs(loss_distortion(recon, x, TrainSettings((1,), metric="ms-ssim")).item() - ms) < 1e-7
    given = torch.tensor(mse, dtype=torch.float32)  # a squared error already computed is used, not recomputed
    for settings in (TrainSettings((1,)), TrainSettings((1,), metric="mixed", ms_ssim_share=0.25)):
        assert loss_distortion(recon, x, settings, given).item() == loss_distortion(recon, x, settings).item()
    assert loss_distortion(recon, x, TrainSettings((1,)), torch.tensor(2.0)).item() == 2.0


def test_bad_training_options_are_checked_before_any_work(tmp_path):
    folder = photo_folder(tmp_path)
    base = ["train", "--data", str(folder), "--model-id", "x", "--arch", "tiny", "--steps", "1,1", "--work-dir", str(tmp_path / "w")]
    result = CliRunner().invoke(cli, [*base, "--ms-ssim-share", "0.3"])
    assert result.exit_code == 1 and "--ms-ssim-share needs --metric mixed" in result.stderr
    result = CliRunner().invoke(cli, [*base, "--metric", "mixed", "--ms-ssim-share", "1.5"])
    assert result.exit_code == 2 and "1.5" in result.stderr
    result = CliRunner().invoke(cli, [*base, "--metric", "mixed", "--crop", "64"])
    assert result.exit_code == 1 and "at least 97 pixels" in result.stderr
    result = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "no-such-folder" / "x.safetensors")])
    assert result.exit_code == 1 and "no-such-folder is not a folder" in result.stderr
    assert not (tmp_path / "w").exists()


def test_refit_tables_keeps_the_network_and_its_pixels(tmp_path, tiny_weights):
    folder = photo_folder(tmp_path)
    out = tmp_path / "refit.safetensors"
    args = ["--data", str(folder), "--crop", "16", "--table-crops", "8"]
    result = CliRunner().invoke(cli, ["refit-tables", str(tiny_weights), "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    old, new = load_codec(tiny_weights)[0], load_codec(out)[0]
    assert all(torch.equal(a, b) for a, b in zip(old.state_dict().values(), new.state_dict().values()))
    assert all(sorted(per_quality) == list(range(len(new.config.qualities))) for per_quality in new.tables)
    assert any(not np.array_equal(new.tables[0][q].pmfs, old.tables[0][q].pmfs) for q in old.tables[0])
    image = smooth_image(24, 24, seed=3)
    for quality in range(len(new.config.qualities)):  # rounded symbols: the search would weigh the new tables' rates
        refit_pixels = decode(encode(image, model=out, quality=quality, search_rounds=0), model=out)
        old_pixels = decode(encode(image, model=tiny_weights, quality=quality, search_rounds=0), model=tiny_weights)
        assert np.array_equal(refit_pixels, old_pixels)

    missing = tmp_path / "x.safetensors"
    for model, extra, message in (
        ("no-such-model", [], "unknown model id"),
        (str(tiny_weights), ["--install"], "needs a shipped model id"),
        (str(tiny_weights), ["--crop", "64"], "no training image is at least 64x64"),
        (str(tiny_weights), ["--out", str(tmp_path / "no-such-folder" / "x.safetensors")], "no-such-folder is not a folder"),
    ):
        bad = CliRunner().invoke(cli, ["refit-tables", model, "--out", str(missing), *args, *extra])
        assert bad.exit_code == 1 and message in bad.stderr and not missing.exists(), bad.output


def test_refit_tables_with_sign_alignment_decodes_the_same_pixels(tmp_path, tiny_weights):
    out = tmp_path / "aligned.safetensors"
    args = ["--data", str(photo_folder(tmp_path)), "--crop", "16", "--table-crops", "8", "--align-signs"]
    result = CliRunner().invoke(cli, ["refit-tables", str(tiny_weights), "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    new = load_codec(out)[0]
    assert all(t.sign_aligned for per_quality in new.tables for t in per_quality.values())
    image = smooth_image(24, 24, seed=4)
    aligned = encode(image, model=out, search_rounds=0)
    assert np.array_equal(decode(aligned, model=out), decode(encode(image, model=tiny_weights, search_rounds=0), model=tiny_weights))
    assert decode(encode(image, model=out), model=out).shape == image.shape  # the search runs on oriented prices


def test_add_quality_appends_a_finer_level_and_keeps_every_other_level_exact(tmp_path, tiny_weights):
    folder = photo_folder(tmp_path)
    out = tmp_path / "finer.safetensors"
    args = ["--data", str(folder), "--crop", "16", "--table-crops", "8", "--model-id", "test-finer", "--out", str(out)]
    result = CliRunner().invoke(cli, ["add-quality", str(tiny_weights), "--factor", "0.5", *args])
    assert result.exit_code == 0, result.output
    old, new = load_codec(tiny_weights)[0], load_codec(out)[0]
    assert new.config.model_id == "test-finer" and new.config.qualities == old.config.qualities + (0.5,)
    assert all(torch.equal(a, b) for a, b in zip(old.state_dict().values(), new.state_dict().values()))
    finest = len(old.config.qualities)
    for k, per_quality in enumerate(new.tables):
        assert sorted(per_quality) == list(range(finest + 1))
        assert all(np.array_equal(per_quality[q].pmfs, old.tables[k][q].pmfs) for q in range(finest))
    image = smooth_image(24, 24, seed=5)
    for quality in range(finest):  # the old levels: the same pixels from files of the same size
        before, after = encode(image, model=tiny_weights, quality=quality), encode(image, model=out, quality=quality)
        assert np.array_equal(decode(after, model=out), decode(before, model=tiny_weights))
        assert len(after) - len(before) == len("test-finer") - len(old.config.model_id)  # the header names the model
    coarser, finer = (decode(encode(image, model=out, quality=q, search_rounds=0), model=out) for q in (finest - 1, finest))
    error = lambda pixels: np.mean((pixels.astype(float) - image) ** 2)
    assert error(finer) < error(coarser)

    missing = tmp_path / "x.safetensors"
    for factor, extra, message in (
        ("0.7", [], "below the model's finest, 0.7"),
        ("0.5", ["--default"], "--default needs --install"),
        ("0", [], "not in the range x>0"),
        ("0.5", ["--model-id", "cdc-msssim-10"], "already shipped"),
    ):
        bad = CliRunner().invoke(cli, ["add-quality", str(tiny_weights), "--factor", factor, *args[:-1], str(missing), *extra])
        assert bad.exit_code in (1, 2) and message in bad.stderr and not missing.exists(), bad.output


def test_level_schedule_weights_levels_and_keeps_the_plain_cycle():
    """'all' is the cycle every fine-tuning run before level weights used (runs resume
    and reproduce); weights give each level its share of every cycle, interleaved."""
    plain = level_schedule("all", 5, 2)
    assert [plain(n) for n in range(12)] == [n % 5 for n in range(12)]
    assert {level_schedule("trained", 5, 2)(n) for n in range(7)} == {2}
    low = level_schedule("2,2,2,1,1", 5, 2)
    assert [low(n) for n in range(10)] == [0, 1, 2, 3, 4, 0, 1, 2, 0, 1]
    counts = np.bincount([low(n) for n in range(800)], minlength=5)
    assert counts.tolist() == [200, 200, 200, 100, 100]
    assert {level_schedule("0,1,0", 3, 1)(n) for n in range(5)} == {1}  # a zero weight skips its level
    for bad in ("1,1", "0,0,0", "1,-1,1", "a,b,c", ""):
        with pytest.raises(ValueError):
            level_schedule(bad, 3, 1)
