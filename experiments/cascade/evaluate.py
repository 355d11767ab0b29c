"""Reconstruction quality as the paper measures it: mean SSIM on the test split.

The paper maps reconstructions back from [-1, 1] to [0, 255] before scoring.
We do the same and also round to 8-bit pixels (what an image decoder would
output), then average scikit-image's SSIM (its defaults: 7x7 uniform window,
K1 = 0.01, K2 = 0.03, data_range = 255) over the test images. The paper does
not state its SSIM settings, so small absolute offsets from its numbers may
come from there; differences between algorithms are measured the same way.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import structural_similarity

from ...bench import metrics
from .models import CascadeAutoencoder


def to_pixels(images: np.ndarray) -> np.ndarray:
    """[-1, 1] float images (N, 784) -> uint8 (N, 28, 28), clipping out-of-range values."""
    scaled = np.clip((np.asarray(images, dtype=np.float64) + 1.0) * 127.5, 0.0, 255.0)
    return np.rint(scaled).astype(np.uint8).reshape(-1, 28, 28)


def ssim_per_image(originals: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """SSIM of each reconstruction against its original, both in [-1, 1] (N, 784)."""
    a, b = to_pixels(originals), to_pixels(reconstructions)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    return np.array([structural_similarity(x, y, data_range=255) for x, y in zip(a, b)])


@torch.no_grad()
def latents(model: CascadeAutoencoder, x: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """The latent the encoder would transmit for each image (the mean for a VAE)."""
    model.eval()
    return torch.cat([model.encoder(x[i : i + chunk]) for i in range(0, len(x), chunk)])


@torch.no_grad()
def decode_all_stages(model: CascadeAutoencoder, z: torch.Tensor, chunk: int = 4096) -> list[np.ndarray]:
    """Every stage's reconstruction (float, [-1, 1] before clipping) from latents."""
    model.eval()
    per_chunk = [model.decode_stages(z[i : i + chunk]) for i in range(0, len(z), chunk)]
    stages = len(per_chunk[0])
    return [torch.cat([c[s] for c in per_chunk]).cpu().numpy() for s in range(stages)]


def stage_ssims(originals: np.ndarray, reconstructions: list[np.ndarray]) -> list[float]:
    """Mean test SSIM of every stage."""
    return [float(ssim_per_image(originals, r).mean()) for r in reconstructions]


def stage_psnrs(originals: np.ndarray, reconstructions: list[np.ndarray]) -> list[float]:
    """PSNR (dB, peak 255) of every stage over the whole test split, on the same 8-bit pixels as SSIM.

    The decoders are trained on squared error; PSNR shows what that objective
    gains stage by stage, which SSIM on near-constant backgrounds can hide.
    """
    reference = to_pixels(originals)
    values = (metrics.psnr(reference, to_pixels(r)) for r in reconstructions)
    return [float("inf") if v is None else v for v in values]  # None: identical
