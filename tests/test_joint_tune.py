"""`cdcodec train-joint`: every stage fine-tuned at once, a loss at each (codec/training/joint_tune.py)."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from cdcodec.cli.main import cli
from cdcodec.codec.presets import preset_config
from cdcodec.codec.training.joint_tune import JointTuneSettings
from cdcodec.codec.weights import codec_tensors, load_codec
from conftest import build_tiny_model, check_resumed_refit_round_trip
from imagegen import photo_folder


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("joint") / "tiny.safetensors"
    build_tiny_model(path)
    return path


def _run(weights, folder, work, out, *extra):
    return CliRunner().invoke(cli, ["train-joint", str(weights), "--data", str(folder), "--model-id", "joint", "--batch", "2", "--crop", "16",
                                    "--work-dir", str(work), "--out", str(out), *extra])


def _changed(before: dict, after: dict, prefix: str) -> bool:
    return any(not torch.equal(before[k], v) for k, v in after.items() if k.startswith(prefix))


def test_train_joint_tunes_every_stage_keeps_the_tables_and_resumes(tmp_path, tiny_weights):
    folder, work, out = photo_folder(tmp_path), tmp_path / "work", tmp_path / "joint.safetensors"
    result = _run(tiny_weights, folder, work, out, "--steps", "3")
    assert result.exit_code == 0, result.output
    source, tuned = load_codec(tiny_weights)[0], load_codec(out)[0]
    assert tuned.config.model_id == "joint" and tuned.config.stages == source.config.stages
    before, after = source.state_dict(), tuned.state_dict()
    assert all(_changed(before, after, f"stages.{i}.") for i in range(source.num_stages))
    tables = {k: v for k, v in codec_tensors(source).items() if k.startswith("tables.")}
    assert all(torch.equal(codec_tensors(tuned)[k], v) for k, v in tables.items())  # the source's, to be refit

    check_resumed_refit_round_trip(lambda: _run(tiny_weights, folder, work, out, "--steps", "5"), work, out, folder, tmp_path)


def test_an_earlier_stage_learns_from_a_later_stage_loss_alone(tmp_path, tiny_weights):
    """What train-stage cannot do: with stage 1's own loss weighted 0, stage 1 still trains,
    on what its image costs stage 2; stage 2 weighted 0 gets no gradient and stays as it was."""
    assert load_codec(tiny_weights)[0].num_stages == 2
    folder = photo_folder(tmp_path)
    before = load_codec(tiny_weights)[0].state_dict()
    for weights, trained, kept in (("0,1", "stages.0.", None), ("1,0", "stages.0.", "stages.1.")):
        out = tmp_path / f"{weights}.safetensors"
        result = _run(tiny_weights, folder, tmp_path / weights, out, "--steps", "2", "--stage-weights", weights)
        assert result.exit_code == 0, result.output
        after = load_codec(out)[0].state_dict()
        assert _changed(before, after, trained)
        assert kept is None or not _changed(before, after, kept)


def test_train_joint_refuses_bad_requests_before_any_work(tmp_path, tiny_weights):
    folder, work = photo_folder(tmp_path), tmp_path / "w"
    stages = len(preset_config("tiny", "x").stages)
    for extra, message in (
        (["--stage-weights", "1"], f"--stage-weights needs {stages} numbers, not 1"),
        (["--stage-weights", ",".join(["a"] * stages)], "--stage-weights takes numbers"),
        (["--stage-weights", ",".join(["-1"] * stages)], "none negative"),
        (["--stage-weights", ",".join(["0"] * stages)], "not all zero"),
        (["--ms-ssim-share", "0.3"], "--ms-ssim-share needs --metric mixed"),
    ):
        result = _run(tiny_weights, folder, work, tmp_path / "o.safetensors", *extra)
        assert result.exit_code == 1 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.output
    assert not work.exists()
    with pytest.raises(ValueError, match="levels"):
        JointTuneSettings(steps=1, stage_weights=(1.0,), levels="some")
