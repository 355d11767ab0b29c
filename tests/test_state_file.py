"""Experiment caches keep nested training state in safetensors, and convert older torch pickles."""

from __future__ import annotations

import pytest
import torch

from cdcodec.experiments.state_file import load_state, save_state


def _training_state() -> dict:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LeakyReLU(), torch.nn.Linear(4, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))
    model(torch.randn(5, 3)).square().sum().backward()
    optimizer.step()
    return {"epoch": 7, "modules": {"net": model.state_dict()}, "optimizers": {"net": optimizer.state_dict()}, "note": None}


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b and type(a) is type(b)


def test_nested_state_round_trips_with_key_and_container_types(tmp_path):
    state = _training_state()
    assert 0 in state["optimizers"]["net"]["state"]  # int keys, tuples (betas) and 0-d tensors (step) all occur
    save_state(tmp_path / "s.safetensors", state)
    back = load_state(tmp_path / "s.safetensors")
    assert _same(state, back)
    optimizer = torch.optim.Adam(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LeakyReLU(), torch.nn.Linear(4, 2)).parameters())
    optimizer.load_state_dict(back["optimizers"]["net"])  # usable as it comes back
    assert not list(tmp_path.glob("*.tmp"))


def test_a_legacy_pickle_is_converted_once_and_removed(tmp_path):
    state = _training_state()
    legacy = tmp_path / "stage1.pt"
    torch.save(state, legacy)
    target = tmp_path / "stage1.safetensors"
    assert _same(load_state(target, legacy), state)
    assert target.is_file() and not legacy.exists()
    assert _same(load_state(target, legacy), state)
    assert load_state(tmp_path / "none.safetensors", tmp_path / "none.pt") is None


def test_objects_that_are_not_plain_state_are_refused(tmp_path):
    with pytest.raises(TypeError, match="cannot store a object"):
        save_state(tmp_path / "x.safetensors", {"thing": object()})
    assert not (tmp_path / "x.safetensors").exists()
