"""Scoring: the paper's reconstruction error, per held-out image.

Table 1 reports the sum of squared errors between a 128x128x3 face in [0, 1] and its
reconstruction, averaged over 100 faces.  Models are scored in eval mode (batch norms on
their running statistics), VAEs through their posterior mean.
"""

from __future__ import annotations

import numpy as np
import torch

from .data import batches
from .model import Autoencoder


@torch.no_grad()
def reconstruct(model: Autoencoder, faces: np.ndarray, idx: np.ndarray,
                device: torch.device | str = "cpu", batch_size: int = 50) -> torch.Tensor:
    """Reconstructions of ``faces[idx]`` (in the order of ``idx``), float on the CPU."""
    model.eval()
    outs = []
    for start in range(0, len(idx), batch_size):
        x = next(batches(faces, np.asarray(idx[start:start + batch_size]), len(idx)))
        outs.append(model(x.to(device)).cpu())
    return torch.cat(outs)


def sse_per_image(model: Autoencoder, faces: np.ndarray, idx: np.ndarray,
                  device: torch.device | str = "cpu") -> np.ndarray:
    """Sum of squared errors of each face in ``faces[idx]`` (pixels scaled to [0, 1])."""
    idx = np.asarray(idx)
    rec = reconstruct(model, faces, idx, device)
    ref = next(batches(faces, idx, len(idx)))
    return (rec - ref).pow(2).flatten(1).sum(1).numpy()
