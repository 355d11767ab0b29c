"""Nested training state (module and optimizer state dicts, counters) in one safetensors file.

The experiments' caches keep finished models and per-epoch checkpoints: nested
dicts of tensors with a few plain values (the epoch, Adam's settings).
safetensors stores flat named tensors plus string metadata and never runs code
when it reads a file (pickle does); so the tensors go in under path-like names
and the nesting, with every plain value, goes into the metadata as JSON.

Caches written before this module held the same states as torch pickles
(`.pt`); `load_state` converts such a file the first time it is read, using
torch's weights-only unpickler, which refuses anything but tensors and plain
containers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

_TREE = "state_tree"


def _strip(node, name: str, tensors: dict[str, torch.Tensor]):
    """JSON-able copy of `node` with every tensor moved into `tensors` under a unique name."""
    if isinstance(node, torch.Tensor):
        tensors[name] = node.detach().cpu().clone().contiguous()  # clone: safetensors refuses shared storage
        return {"tensor": name}
    if isinstance(node, dict):  # keys kept with their types (optimizer states use ints)
        return {"dict": [[key, _strip(value, f"{name}/{i}", tensors)] for i, (key, value) in enumerate(node.items())]}
    if isinstance(node, (list, tuple)):
        kind = "tuple" if isinstance(node, tuple) else "list"
        return {kind: [_strip(value, f"{name}/{i}", tensors) for i, value in enumerate(node)]}
    if node is None or isinstance(node, (bool, int, float, str)):
        return {"value": node}
    raise TypeError(f"cannot store a {type(node).__name__} in a state file")


def _rebuild(node, tensors: dict[str, torch.Tensor]):
    (kind, body), = node.items()
    if kind == "tensor":
        return tensors[body]
    if kind == "dict":
        return {key: _rebuild(value, tensors) for key, value in body}
    if kind in ("list", "tuple"):
        items = [_rebuild(value, tensors) for value in body]
        return tuple(items) if kind == "tuple" else items
    if kind == "value":
        return body
    raise ValueError(f"unknown entry {kind!r} in a state file")


def save_state(path: Path, state: dict) -> None:
    """Write `state` to `path` atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    tree = _strip(state, "s", tensors)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={_TREE: json.dumps(tree)})
    os.replace(tmp, path)


def load_state(path: Path, legacy: Path | None = None) -> dict | None:
    """The state saved at `path`; else the one in the `legacy` torch pickle, converted to `path`; else None."""
    path = Path(path)
    if path.is_file():
        with safe_open(str(path), framework="pt") as handle:
            tree = json.loads((handle.metadata() or {})[_TREE])
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        return _rebuild(tree, tensors)
    if legacy is not None and Path(legacy).is_file():
        state = torch.load(legacy, map_location="cpu", weights_only=True)
        save_state(path, state)
        Path(legacy).unlink()
        return state
    return None
