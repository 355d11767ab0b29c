"""Resumable training state in one safetensors file (no pickle).

Holds the codec's parameters and any finished stages' tables, the optimizer's
tensors, and in the metadata the progress (stage, step) plus everything else
needed to continue exactly where a run stopped, on this machine or another.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..model import CascadeCodec
from ..weights import codec_tensors, restore_codec


def save_checkpoint(path: Path, codec: CascadeCodec, optimizer: torch.optim.Optimizer | None, progress: dict) -> None:
    tensors = codec_tensors(codec)
    meta = {"progress": json.dumps(progress), "config": json.dumps(codec.config.to_dict())}
    if optimizer is not None:
        state = optimizer.state_dict()
        for pid, pstate in state["state"].items():
            for key, value in pstate.items():
                tensors[f"opt.{pid}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
        meta["param_groups"] = json.dumps(state["param_groups"])
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)


def load_checkpoint(path: Path, codec: CascadeCodec) -> tuple[dict, dict | None]:
    """Restore `codec` in place; return (progress, optimizer state dict or None)."""
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    restore_codec(codec, tensors)
    optimizer_state = None
    if "param_groups" in meta:
        state: dict = {}
        for key, value in tensors.items():
            if key.startswith("opt."):
                _, pid, name = key.split(".", 2)
                state.setdefault(int(pid), {})[name] = value
        optimizer_state = {"state": state, "param_groups": json.loads(meta["param_groups"])}
    return json.loads(meta["progress"]), optimizer_state
