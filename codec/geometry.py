"""Padding to the networks' block multiple and cropping back: the only place that does it.

Every stage works on whole blocks, so an image is padded (by edge replication,
which costs few bits and leaves no artificial edges) up to a multiple of the
largest block size before encoding; decoding crops the same amount away.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def padded_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad an (N, C, H, W) tensor at the bottom and right by replicating the edge."""
    height, width = x.shape[-2:]
    ph, pw = padded_size(height, width, multiple)
    if (ph, pw) == (height, width):
        return x
    return F.pad(x, (0, pw - width, 0, ph - height), mode="replicate")


def crop_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return x[..., :height, :width]
