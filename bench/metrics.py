"""Quality and rate measures of one reconstruction, computed the same way for every codec.

Conventions (stated because papers differ and results are not comparable otherwise):

- Rate: bits per pixel from the real encoded bytes, ``8 * len(data) / (H * W)``;
  bits per sub-pixel divides by ``H * W * C`` instead (the usual lossless figure).
- PSNR: over all RGB samples together (one MSE), peak 255. An exact reconstruction
  has no finite PSNR; it is reported as None (JSON null) rather than infinity, which
  strict JSON cannot hold.
- SSIM: scikit-image ``structural_similarity`` with ``channel_axis=2`` and
  ``data_range=255``, its defaults otherwise (7x7 uniform window), averaged over channels.
- MS-SSIM: pytorch-msssim ``ms_ssim`` with ``data_range=255`` and its defaults (5 scales,
  11x11 Gaussian window). It needs the shorter side to exceed 160 pixels; smaller images
  get None instead of an error.
- For curves and BD-rates, SSIM and MS-SSIM are also used in decibels,
  ``-10 log10(1 - x)``, which spreads out the values near 1 where codecs differ.
"""

from __future__ import annotations

import math

import numpy as np

from ..codec.similarity import ms_ssim  # defined once, for the encoder too
SSIM_MIN_SIDE = 7


def bpp(num_bytes: int, image: np.ndarray) -> float:
    return 8.0 * num_bytes / (image.shape[0] * image.shape[1])


def bpsp(num_bytes: int, image: np.ndarray) -> float:
    """Bits per sub-pixel (per colour sample)."""
    return 8.0 * num_bytes / image.size


def max_abs_error(reference: np.ndarray, decoded: np.ndarray) -> int:
    return int(np.abs(reference.astype(np.int16) - decoded.astype(np.int16)).max())


def psnr(reference: np.ndarray, decoded: np.ndarray) -> float | None:
    mse = float(np.mean((reference.astype(np.float64) - decoded.astype(np.float64)) ** 2))
    if mse == 0.0:
        return None
    return 10.0 * math.log10(255.0**2 / mse)


def ssim(reference: np.ndarray, decoded: np.ndarray) -> float | None:
    if min(reference.shape[:2]) < SSIM_MIN_SIDE:
        return None
    from skimage.metrics import structural_similarity

    return float(structural_similarity(reference, decoded, channel_axis=2, data_range=255))


def to_db(similarity: float | None) -> float | None:
    """SSIM-like score in decibels, -10 log10(1 - x); None stays None, 1 becomes None (exact)."""
    if similarity is None or similarity >= 1.0:
        return None
    return -10.0 * math.log10(1.0 - similarity)


def measure(reference: np.ndarray, decoded: np.ndarray, num_bytes: int) -> dict:
    """All per-point measures that depend only on the images and the byte count."""
    if decoded.shape != reference.shape:
        raise ValueError(f"decoded shape {decoded.shape} differs from the original {reference.shape}")
    return {
        "bytes": int(num_bytes),
        "bpp": bpp(num_bytes, reference),
        "bpsp": bpsp(num_bytes, reference),
        "psnr": psnr(reference, decoded),
        "ssim": ssim(reference, decoded),
        "ms_ssim": ms_ssim(reference, decoded),
        "max_abs_error": max_abs_error(reference, decoded),
    }
