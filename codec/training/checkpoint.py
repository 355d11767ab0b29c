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

from ...bitstream import SymbolTables
from ..model import CascadeCodec


def save_checkpoint(path: Path, codec: CascadeCodec, optimizer: torch.optim.Optimizer | None, progress: dict) -> None:
    tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in codec.state_dict().items()}
    for i, tables in enumerate(codec.tables):
        if tables is not None:
            tensors[f"tables.{i}.offsets"] = torch.from_numpy(tables.offsets.astype("int32"))
            tensors[f"tables.{i}.sizes"] = torch.from_numpy(tables.sizes.astype("int32"))
            tensors[f"tables.{i}.pmfs"] = torch.from_numpy(tables.pmfs.astype("int32"))
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
    codec.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
    for i in range(codec.num_stages):
        if f"tables.{i}.pmfs" in tensors:
            codec.tables[i] = SymbolTables(
                offsets=tensors[f"tables.{i}.offsets"].numpy(),
                sizes=tensors[f"tables.{i}.sizes"].numpy(),
                pmfs=tensors[f"tables.{i}.pmfs"].numpy().astype("uint32"),
            )
    optimizer_state = None
    if "param_groups" in meta:
        state: dict = {}
        for key, value in tensors.items():
            if key.startswith("opt."):
                _, pid, name = key.split(".", 2)
                state.setdefault(int(pid), {})[name] = value
        optimizer_state = {"state": state, "param_groups": json.loads(meta["param_groups"])}
    return json.loads(meta["progress"]), optimizer_state
