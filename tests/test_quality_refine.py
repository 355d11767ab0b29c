"""Refine CNNs that see the quality level: the upgrade keeps the images, training touches only them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cdcodec.cli.main import cli
from cdcodec.codec.pipeline import decode, encode
from cdcodec.codec.model import CascadeCodec, CodecConfig
from cdcodec.codec.stage import StageConfig
from cdcodec.codec.training.quality_refine import RefineSettings, with_deeper_refine, with_quality_input
from cdcodec.codec.weights import codec_tensors, load_codec, save_codec
from imagegen import photo_folder, smooth_image
from reach import half_block_around, one_move_change


def _with_working_refine(codec):
    """The tiny fixture's refine CNNs output zero (last layer zero, untrained); give them a
    correction to keep, so that 'the same images' means something."""
    torch.manual_seed(3)
    with torch.no_grad():
        for stage in codec.stages:
            stage.refine.body[-1].weight.normal_(0, 0.05)
    return codec


def _same_tables(a, b) -> bool:
    tables = lambda codec: {k: v for k, v in codec_tensors(codec).items() if not k.startswith("net.")}
    first, second = tables(a), tables(b)
    return first.keys() == second.keys() and len(first) > 0 and all(torch.equal(first[k], second[k]) for k in first)


def _image_tensor(seed, size=24):
    return torch.from_numpy(smooth_image(size, size, seed=seed)).permute(2, 0, 1)[None].float() / 255


def test_quality_input_starts_with_the_source_models_images(tiny_weights):
    source = _with_working_refine(load_codec(tiny_weights)[0])
    upgraded = with_quality_input(source, "tiny-q")
    assert upgraded.config.model_id == "tiny-q"
    assert all(s.refine_sees_quality for s in upgraded.config.stages)
    assert _same_tables(upgraded, source)
    x = _image_tensor(5)
    for level in range(len(source.config.qualities)):
        a = source.analyse(x, source.num_stages, level)
        b = upgraded.analyse(x, upgraded.num_stages, level)
        assert all(torch.equal(p, q) for p, q in zip(a, b))
        levels = [level] * len(a)
        for old, new in zip(source.synthesise(a, x, levels), upgraded.synthesise(b, x, levels)):
            assert torch.allclose(old, new, atol=1e-6)
    again = with_quality_input(upgraded, "again")  # already seeing it: a copy to train further
    assert again.config.model_id == "again" and again.config.stages == upgraded.config.stages
    assert all(torch.equal(p, q) for p, q in zip(again.state_dict().values(), upgraded.state_dict().values()))
    assert again.tables == upgraded.tables


def test_the_quality_plane_changes_the_correction_per_level(tiny_weights):
    codec = with_quality_input(_with_working_refine(load_codec(tiny_weights)[0]), "tiny-q")
    stage = codec.stages[0]
    with torch.no_grad():
        stage.refine.body[0].weight[:, 6].fill_(0.2)
    x = _image_tensor(6)
    prev = codec.base(x)
    coarse, fine = (stage.correction(x, prev, s) for s in (1.5, 0.7))
    assert not torch.allclose(coarse, fine)
    # One scale per image, as training may pass it, equals each image at its own scale.
    both = stage.correction(torch.cat([x, x]), torch.cat([prev, prev]), torch.tensor([1.5, 0.7]).view(2, 1, 1, 1))
    assert torch.allclose(both[0], coarse[0], atol=1e-6) and torch.allclose(both[1], fine[0], atol=1e-6)


def test_train_refine_changes_only_the_refine_cnns_and_resumes(tmp_path, tiny_weights):
    source_path = tmp_path / "source.safetensors"
    save_codec(_with_working_refine(load_codec(tiny_weights)[0]), source_path)
    folder, work, out = photo_folder(tmp_path), tmp_path / "work", tmp_path / "q.safetensors"
    args = ["train-refine", str(source_path), "--data", str(folder), "--model-id", "tiny-q",
            "--batch", "2", "--crop", "16", "--work-dir", str(work), "--out", str(out)]
    result = CliRunner().invoke(cli, [*args, "--steps", "3"])
    assert result.exit_code == 0, result.output
    source, trained = load_codec(source_path)[0], load_codec(out)[0]
    assert trained.config.model_id == "tiny-q" and _same_tables(trained, source)
    before, after = source.state_dict(), trained.state_dict()
    for key, value in after.items():
        if ".refine." not in key:
            assert torch.equal(before[key], value), key
    assert not torch.equal(before["stages.0.refine.body.2.weight"], after["stages.0.refine.body.2.weight"])
    # The weights stage 1's CNN gives the quality plane moved away from zero.
    assert after["stages.0.refine.body.0.weight"][:, 6].abs().sum() > 0

    # A longer run continues from the checkpoint (3 steps done) instead of starting over.
    result = CliRunner().invoke(cli, [*args, "--steps", "5"])
    assert result.exit_code == 0, result.output
    assert json.loads((work / "log.json").read_text())["steps"] == 5

    image = smooth_image(20, 20, seed=9)
    for quality in range(len(trained.config.qualities)):
        for stages in (1, 2):
            pixels = decode(encode(image, model=out, quality=quality), model=out, stages=stages)
            assert pixels.shape == image.shape and pixels.dtype == np.uint8


def test_train_refine_checks_its_options_before_any_work(tmp_path, tiny_weights):
    folder, work = photo_folder(tmp_path), tmp_path / "w"
    base = ["train-refine", str(tiny_weights), "--data", str(folder), "--model-id", "x", "--work-dir", str(work)]
    for extra, message in (
        (["--ms-ssim-share", "0.3"], "--ms-ssim-share needs --metric mixed"),
        (["--metric", "mixed", "--crop", "64"], "at least 97 pixels"),
    ):
        result = CliRunner().invoke(cli, [*base, *extra])
        assert result.exit_code == 1 and message in result.stderr, result.output
    result = CliRunner().invoke(cli, ["train-refine", "no-such-model", "--data", str(folder), "--model-id", "x", "--work-dir", str(work)])
    assert result.exit_code == 1 and "unknown model id" in result.stderr
    assert not work.exists()
    with pytest.raises(ValueError, match="share"):
        RefineSettings(steps=1, metric="mixed", ms_ssim_share=1.5)


def _deepenable_codec() -> CascadeCodec:
    """A fresh two-stage codec with 8-pixel blocks and 2-layer refine CNNs (room for 4),
    every refine weight random so that each layer matters."""
    stages = (StageConfig(block=8, step=0.2, refine_features=8, refine_layers=2, encoder_features=8, refine_sees_quality=True),) * 2
    codec = CascadeCodec(CodecConfig(model_id="deepen", stages=stages, qualities=(1.0,)))
    torch.manual_seed(4)
    with torch.no_grad():
        for stage in codec.stages:
            for parameter in stage.refine.parameters():
                parameter.normal_(0, 0.2)
    return codec


def test_a_deeper_refine_cnn_is_the_source_with_identity_layers_before_its_last(tmp_path):
    source = _deepenable_codec()
    deeper = with_deeper_refine(source, (4, 2))
    assert [s.refine_layers for s in deeper.config.stages] == [4, 2]
    assert deeper.config.model_id == source.config.model_id and deeper.tables == source.tables
    old, new = source.stages[0].refine.body, deeper.stages[0].refine.body
    x = torch.rand(1, 7, 24, 24)
    with torch.no_grad():
        features = old[:-1](x)
        # Each added layer is the identity followed by the activation once more.
        expected = old[-1](new[-1 - 1](new[-1 - 3](features)))
        assert torch.allclose(new(x), expected, atol=1e-6)
        assert not torch.allclose(new(x), old(x), atol=1e-3)
    # Stage 2 kept its depth and its weights.
    assert all(torch.equal(a, b) for a, b in zip(source.stages[1].refine.state_dict().values(), deeper.stages[1].refine.state_dict().values()))
    # The deeper model saves and loads as itself.
    save_codec(deeper, tmp_path / "deeper.safetensors")
    loaded = load_codec(tmp_path / "deeper.safetensors")[0]
    assert loaded.config == deeper.config
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), deeper.state_dict().values()))


def test_a_refine_cnn_at_its_deepest_changes_no_pixel_beyond_half_a_block():
    """The bound StageConfig enforces is the one the symbol search relies on
    (test_symbol_search): one symbol's change stays within half a block of its block."""
    codec = with_deeper_refine(_deepenable_codec(), (4, 4))
    stage, block = codec.stages[0], 8
    with torch.no_grad():  # the added layers, trained: no longer centre taps only
        for parameter in stage.refine.parameters():
            parameter.normal_(0, 0.2)
    x = torch.rand(1, 3, 48, 48)
    change = one_move_change(stage, x, codec.base(x), channel=5, delta=3)
    reach = half_block_around(change, block)
    assert change[~reach].max() == 0
    # ...and it does reach that far: the ring just inside the bound changed.
    ring = reach & ~half_block_around(change, block, inset=1)
    assert change[ring].sum() > 0


def test_refine_cnns_only_grow_and_reach_at_most_half_a_block():
    with pytest.raises(ValueError, match="2 to 8 refine layers, not 9"):
        StageConfig(block=8, step=0.2, refine_layers=9)
    with pytest.raises(ValueError, match="can only grow"):
        with_deeper_refine(with_deeper_refine(_deepenable_codec(), (3, 2)), (2, 2))
    with pytest.raises(ValueError, match="2 stages, not 3"):
        with_deeper_refine(_deepenable_codec(), (2, 2, 2))


def test_train_refine_can_train_one_stage_alone(tmp_path, tiny_weights):
    source_path = tmp_path / "source.safetensors"
    save_codec(_with_working_refine(load_codec(tiny_weights)[0]), source_path)
    out = tmp_path / "one.safetensors"
    result = CliRunner().invoke(cli, ["train-refine", str(source_path), "--data", str(photo_folder(tmp_path)), "--model-id", "one",
                                      "--stages", "2", "--steps", "2", "--batch", "2", "--crop", "16",
                                      "--work-dir", str(tmp_path / "w"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    before, after = with_quality_input(load_codec(source_path)[0], "one").state_dict(), load_codec(out)[0].state_dict()
    changed = {key.split(".refine.")[0] for key in after if not torch.equal(before[key], after[key])}
    assert changed == {"stages.1"}


def test_train_refine_refuses_bad_refine_depths_in_one_line(tmp_path, tiny_weights):
    folder, work = photo_folder(tmp_path), tmp_path / "w"
    base = ["train-refine", str(tiny_weights), "--data", str(folder), "--model-id", "x", "--work-dir", str(work)]
    for option, value, message in (
        ("--refine-layers", "5,3", "takes 2 to 4 refine layers, not 5"),
        ("--refine-layers", "4,x", "--refine-layers takes whole numbers separated by commas"),
        ("--refine-layers", "2", "not 1 refine depths"),
        ("--stages", "3", "has 2 stages, not 3"),
        ("--stages", "0", "numbered from 1"),
    ):
        result = CliRunner().invoke(cli, [*base, option, value])
        assert result.exit_code == 1 and message in result.stderr and "Traceback" not in result.output, result.output
    assert not work.exists()


def test_the_manifest_record_names_the_command_as_typed(tmp_path, monkeypatch):
    from cdcodec.cli.train import _training_record

    (tmp_path / "log.json").write_text(json.dumps({"steps": 3, "train_seconds": 1.5}))
    monkeypatch.setattr("sys.argv", ["cdcodec", "train-refine", "cdc-mix-2", "--data", "my photos", "--steps", "3"])
    record = _training_record("train-refine", tmp_path / "data", "cdc-mix-2", {"steps": 3}, "cpu", 0.0, tmp_path, "a remark")
    assert record["command"] == "cdcodec train-refine cdc-mix-2 --data 'my photos' --steps 3"
    assert record["fine_tuned_from"] == "cdc-mix-2" and record["log"] == {"steps": 3, "train_seconds": 1.5}
    assert record["note"] == "a remark" and record["device"].startswith("cpu (")
    assert "note" not in _training_record("train", tmp_path, None, {}, "cpu", 0.0, tmp_path, None)
