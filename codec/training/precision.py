"""The arithmetic a training step runs in: float32, or bfloat16 autocast.

Why a choice: under `torch.autocast(dtype=torch.bfloat16)` the convolutions
run in bfloat16 (weights, optimizer and loss stay float32), which is what a
GPU's tensor cores want and what issue 3 asks for there. A CPU with
AVX512-BF16 (this project's machine) runs them faster too, 1.2 to 1.7 times,
to within 0.2% of float32's loss (results/training/README.md, "Mixed
precision, measured on CPU"); on CPU it is still opt-in, since the shipped
models' commands remake them only in float32 and a CPU without bfloat16
instructions may be slower. Decoding never uses it; the coded bytes come from
float32 arithmetic whatever trained the weights.
"""

from __future__ import annotations

import torch

#: "auto": bfloat16 autocast on CUDA, float32 elsewhere; "bf16": bfloat16 autocast
#: on any device; "fp32": float32 everywhere.
PRECISIONS = ("auto", "bf16", "fp32")


def check_precision(precision: str) -> None:
    """Raise ValueError for a precision this module does not know."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")


def uses_autocast(device: torch.device | str, precision: str) -> bool:
    """Whether a training step on `device` runs under bfloat16 autocast."""
    check_precision(precision)
    if precision == "auto":
        return torch.device(device).type == "cuda"
    return precision == "bf16"


def arithmetic_name(device: torch.device | str, precision: str) -> str:
    """What a record of a run says it trained in."""
    return "bfloat16 autocast" if uses_autocast(device, precision) else "float32"
