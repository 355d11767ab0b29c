"""Training runs end to end on a tiny folder, checkpoints, resumes and yields a working model."""

from __future__ import annotations

import json

from click.testing import CliRunner
from PIL import Image

from cdcodec.cli.main import cli
from cdcodec.codec.pipeline import decode, encode
from cdcodec.codec.presets import preset_config
from cdcodec.codec.training.checkpoint import load_checkpoint
from cdcodec.codec.training.train import CHECKPOINT, TrainSettings, train_cascade
from cdcodec.codec.model import CascadeCodec
from imagegen import smooth_image


def photo_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in range(3):
        Image.fromarray(smooth_image(40, 48, seed=seed)).save(folder / f"{seed}.png")
    return folder


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
    optimizer = train_module._optimizer(codec, 0, settings((6, 1)))
    codec.stages[0].prior.bits(torch.zeros(1, 48, 2, 2)).backward()
    optimizer.step()
    save_checkpoint(work / CHECKPOINT, codec, optimizer, {"stage": 0, "step": 5, "initialised": True, "log": []})

    initialised = []
    real_init = train_module._init_stage
    monkeypatch.setattr(train_module, "_init_stage", lambda c, k, *a: (initialised.append(k), real_init(c, k, *a)))
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
