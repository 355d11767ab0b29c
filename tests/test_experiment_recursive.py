"""Tests for the recursive-autoencoder reproduction (experiments/recursive).

Everything runs on tiny synthetic faces (32x32, 5 layers, base width 2), so no
../shared data is needed and the whole file takes seconds.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from torch import nn

from cdcodec.experiments.recursive.cli import recursive_command
from cdcodec.experiments.recursive.configs import EXTRAS, PAPER_TABLE1, TABLE1
from cdcodec.experiments.recursive.data import (
    centre_crop, load_faces, split_indices, synthetic_faces, to_tensor)
from cdcodec.experiments.recursive.evaluate import sse_per_image
from cdcodec.experiments.recursive.model import ArchSpec, Autoencoder
from cdcodec.experiments.recursive.training import (
    TrainSettings, per_layer_losses, prepare_stage, stage_loss, train)

torch.set_num_threads(1)
TINY = dict(n_layers=5, base_width=2)


def tiny(norm="none", **kw) -> Autoencoder:
    torch.manual_seed(0)
    return Autoencoder(ArchSpec(norm=norm, **TINY, **kw))


def batch(n=4, size=32) -> torch.Tensor:
    return to_tensor(synthetic_faces(n, size))


# -- model ---------------------------------------------------------------------------
def test_paper_layer_shapes_128():
    """7 layers take 128x128x3 to a 1x1 code and back, filters doubling then halving."""
    model = Autoencoder(ArchSpec(n_layers=7, base_width=4))
    x = torch.rand(2, 3, 128, 128)
    levels = model.encode_levels(x)
    assert [tuple(t.shape[1:]) for t in levels] == [
        (3, 128, 128), (4, 64, 64), (8, 32, 32), (16, 16, 16), (32, 8, 8),
        (64, 4, 4), (128, 2, 2), (256, 1, 1)]
    outs = model.decode_levels(levels[-1])
    # decoder layer k reproduces the shape of encoder layer k's input
    assert [t.shape for t in outs] == [t.shape for t in reversed(levels[:-1])]
    assert model.encoder[0].conv.kernel_size == (5, 5)
    assert model.decoder[0].conv.kernel_size == (5, 5)
    assert all(l.conv.kernel_size == (3, 3) and l.conv.stride == (2, 2) for l in model.encoder[1:])
    assert all(l.conv.stride == (2, 2) for l in model.decoder)
    y = model(x)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1  # sigmoid output


def test_activation_choice():
    assert isinstance(tiny(activation="relu").encoder[1].act, nn.ReLU)
    assert isinstance(tiny().encoder[1].act, nn.SELU)
    assert isinstance(tiny().decoder[0].act, nn.Sigmoid)


def test_shared_batch_norm_is_one_module():
    model = tiny("shared")
    n = model.spec.n_layers
    for k in range(2, n + 1):
        # decoder layer k rebuilds level k-1, which encoder layer k-1 produces
        assert model.decoder[k - 1].norm is model.encoder[k - 2].norm
        assert model.decoder[k - 1].norm.weight is model.encoder[k - 2].norm.weight
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len({id(m) for m in bns}) == n  # one per level, not per layer


def test_standard_batch_norm_is_not_shared():
    model = tiny("batch")
    for k in range(2, model.spec.n_layers + 1):
        assert isinstance(model.decoder[k - 1].norm, nn.BatchNorm2d)
        assert model.decoder[k - 1].norm is not model.encoder[k - 2].norm
    assert len([m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]) == 2 * 5 - 1


def test_shared_bn_updated_by_decoder_too():
    """A stacked step moves a shared BN's statistics with both its users' batches."""
    model = tiny("shared")
    bn = model.encoder[0].norm
    before = bn.running_mean.clone()
    model.train()
    model(batch())
    assert bn.num_batches_tracked.item() == 2  # once by encoder 1, once by decoder 2
    assert not torch.equal(before, bn.running_mean)


# -- recursive training ---------------------------------------------------------------
@pytest.mark.parametrize("norm", ["none", "batch", "shared"])
def test_recursive_stage_freezes_earlier_layers(norm):
    model = tiny(norm)
    k = 3
    params = prepare_stage(model, k)
    frozen = [model.encoder[0], model.encoder[1], model.decoder[0], model.decoder[1]]
    frozen_state = {id(m): {n: t.clone() for n, t in m.state_dict().items()} for m in frozen}
    opt = torch.optim.SGD(params, lr=1.0)
    x = batch()
    before_k = model.encoder[k - 1].conv.weight.clone()
    loss = stage_loss(model, x, k, TrainSettings())
    loss.backward()
    opt.step()
    for m in frozen:  # weights and batch-norm running statistics alike
        for name, t in m.state_dict().items():
            assert torch.equal(t, frozen_state[id(m)][name]), (norm, name)
    assert not torch.equal(before_k, model.encoder[k - 1].conv.weight)
    assert model.decoder[k - 1].conv.weight.grad is not None
    # untouched deeper layers get no gradient either
    assert model.encoder[k].conv.weight.grad is None


def test_recursive_shared_bn_of_decoder_stays_frozen():
    model = tiny("shared")
    params = prepare_stage(model, 3)
    shared = model.decoder[2].norm  # = encoder layer 2's, trained at depth 2
    assert shared is model.encoder[1].norm
    assert all(p is not shared.weight and p is not shared.bias for p in params)
    assert not shared.training


def test_recursive_stage_target_is_encoder_input():
    """Depth k's loss is decoder k against the input of encoder k, nothing else."""
    model = tiny()
    x = batch()
    k = 2
    with torch.no_grad():
        h = model.encode_levels(x, upto=k - 1)[-1]
        expected = torch.mean((model.decoder[k - 1](model.encoder[k - 1](h)) - h) ** 2)
        assert torch.allclose(stage_loss(model, x, k, TrainSettings()), expected)


# -- per-layer training ---------------------------------------------------------------
def test_per_layer_loss_reaches_every_decoder_layer():
    model = tiny()
    losses = per_layer_losses(model, batch())
    assert len(losses) == model.spec.n_layers
    for k, loss in enumerate(losses, start=1):
        model.zero_grad()
        loss.backward(retain_graph=True)
        # the loss at level k-1 trains decoder layer k (and everything feeding it) ...
        assert model.decoder[k - 1].conv.weight.grad.abs().sum() > 0, k
        # ... but not the shallower decoder layers, which come after it
        for j in range(1, k):
            assert model.decoder[j - 1].conv.weight.grad is None or \
                model.decoder[j - 1].conv.weight.grad.abs().sum() == 0


def test_per_layer_targets_are_detached():
    """The encoder-side target of a per-layer loss passes no gradient back.

    The deepest loss, taken with an explicitly detached target, must give the encoder
    exactly the gradient that per_layer_losses gives; otherwise the target side would
    pull the encoder too (and could shrink features to make the loss trivial).
    """
    model = tiny()
    x = batch()
    n = model.spec.n_layers
    per_layer_losses(model, x)[n - 1].backward()
    got = model.encoder[0].conv.weight.grad.clone()
    model.zero_grad()
    levels = model.encode_levels(x)
    torch.mean((model.decoder[n - 1](levels[n]) - levels[n - 1].detach()) ** 2).backward()
    assert torch.allclose(got, model.encoder[0].conv.weight.grad)


@pytest.mark.parametrize("mode", ["stacked", "recursive", "per-layer"])
def test_training_reduces_error(mode):
    faces = synthetic_faces(48, 32, seed=1)
    idx = np.arange(40)
    model = tiny()
    before = sse_per_image(model, faces, np.arange(40, 48)).mean()
    train(model, mode, faces, idx, TrainSettings(epochs=3, batch_size=8, lr=3e-3))
    after = sse_per_image(model, faces, np.arange(40, 48)).mean()
    assert after < before
    assert all(p.requires_grad for p in model.parameters())
    assert not model.training


@pytest.mark.parametrize("mode", ["stacked", "recursive"])
def test_vae_trains_and_samples(mode):
    torch.manual_seed(0)
    model = Autoencoder(ArchSpec(variational=True, **TINY))
    faces = synthetic_faces(16, 32)
    train(model, mode, faces, np.arange(16), TrainSettings(epochs=1, batch_size=8))
    s = model.sample(3, latent_hw=1)
    assert s.shape == (3, 3, 32, 32) and torch.isfinite(s).all()


# -- data ---------------------------------------------------------------------------
def test_centre_crop_takes_the_middle():
    arr = np.zeros((250, 250, 3), dtype=np.uint8)
    arr[61:189, 61:189] = 200
    out = centre_crop(Image.fromarray(arr), 128)
    assert out.shape == (128, 128, 3) and (out == 200).all()


def test_split_is_fixed_and_disjoint():
    a = split_indices(500, n_eval=100)
    b = split_indices(500, n_eval=100, n_train=50)
    assert np.array_equal(a.eval, b.eval)  # same held-out faces however many train
    assert len(b.train) == 50 and set(b.train) <= set(a.train)
    assert not set(a.eval) & set(a.train)
    assert len(a.train) + len(a.eval) == 500


def _write_jpegs(folder, n=14, size=40):
    folder.mkdir()
    for i, img in enumerate(synthetic_faces(n, size, seed=3)):
        Image.fromarray(img).save(folder / f"face_{i:03d}.jpg", quality=95)


def test_loader_caches_decoded_faces(tmp_path):
    _write_jpegs(tmp_path / "faces")
    faces, names, key = load_faces(tmp_path / "faces", crop=32, cache_dir=tmp_path / "c")
    assert faces.shape == (14, 32, 32, 3) and faces.dtype == np.uint8
    assert list((tmp_path / "c").glob("lfw-*.npy"))
    again, _, key2 = load_faces(tmp_path / "faces", crop=32, cache_dir=tmp_path / "c")
    assert key == key2 and np.array_equal(faces, again)


# -- the command --------------------------------------------------------------------
def test_command_runs_all_eight_configurations(tmp_path):
    _write_jpegs(tmp_path / "faces")
    out = tmp_path / "out"
    args = ["--data-dir", str(tmp_path / "faces"), "--out", str(out), "--epochs", "1",
            "--seeds", "2", "--crop", "16", "--layers", "4", "--base-width", "2",
            "--n-eval", "4", "--batch-size", "5", "--cache-dir", str(tmp_path / "cache")]
    result = CliRunner().invoke(recursive_command, args)
    assert result.exit_code == 0, result.output
    for c in TABLE1:
        assert c.label in result.output
        assert f"| {PAPER_TABLE1[c.key]} |" in result.output
    record = json.loads((out / "results.json").read_text())
    assert [r["key"] for r in record["rows"]][:8] == [c.key for c in TABLE1]
    assert all(len(r["sse_per_seed"]) == 2 for r in record["rows"])
    assert (out / "reconstructions.png").stat().st_size > 0
    assert (out / "vae_samples.png").stat().st_size > 0
    # a second invocation resumes every run from the cache
    again = CliRunner().invoke(recursive_command, args)
    assert again.exit_code == 0 and again.output.count("cached") == 2 * (len(TABLE1) + len(EXTRAS))
    assert json.loads((out / "results.json").read_text())["rows"][0]["sse_mean"] == \
        record["rows"][0]["sse_mean"]


def test_command_missing_data_is_one_line(tmp_path):
    result = CliRunner().invoke(recursive_command, ["--data-dir", str(tmp_path / "nope"),
                                                    "--out", str(tmp_path / "o"), "--no-cache"])
    assert result.exit_code != 0
    assert result.output.strip().count("\n") == 0 and "not found" in result.output


def test_recursive_frozen_bn_in_training_mode_moves_only_running_statistics():
    """frozen_bn="train": frozen batch norms keep updating their statistics, never their weights."""
    model = tiny("batch")
    k = 3
    params = prepare_stage(model, k, frozen_bn="train")
    bn = model.encoder[0].norm
    assert bn.training
    weight, mean = bn.weight.clone(), bn.running_mean.clone()
    opt = torch.optim.SGD(params, lr=1.0)
    stage_loss(model, batch(), k, TrainSettings()).backward()
    opt.step()
    assert torch.equal(weight, bn.weight)
    assert not torch.equal(mean, bn.running_mean)
    assert all(p is not bn.weight and p is not bn.bias for p in params)
