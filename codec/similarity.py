"""MS-SSIM as this project measures it, in one place.

pytorch-msssim's ``ms_ssim`` with ``data_range=255`` and its defaults (5
scales, 11×11 Gaussian window) on H×W×3 arrays of pixel levels. The benchmark
reports it (`bench/metrics.py`) and the encoder's post-filter check uses it
(`postfilter.choose`), so both judge the same number. torch is imported on
first use: the benchmark can import this module without loading it.
"""

from __future__ import annotations

import numpy as np

#: λ for 1 − MS-SSIM is the squared-error λ times this, wherever a loss mixes the two
#: (training, `training.train.loss_distortion`; the encoder's symbol search). On the
#: shipped MSE model, after each of its three stages, 1 − MS-SSIM is 34, 34 and 38
#: times the squared error (pixels in [0, 1], 64 training crops of 128²;
#: `python scripts/msssim_lambda.py --data ../shared/data/train-photos`), so this
#: keeps both losses at about the same balance of rate and distortion. (1/37 was
#: chosen from a first, uncommitted measurement with other crops per stage and
#: the squared error before clamping: 34, 37, 42.)
MS_SSIM_LAMBDA_SCALE = 1 / 37

#: pytorch-msssim: 4 downsamplings of an 11-pixel window need a shorter side above 160.
MS_SSIM_MIN_SIDE = 161


def ms_ssim(reference: np.ndarray, decoded: np.ndarray) -> float | None:
    """MS-SSIM of two H×W×3 images on the 0..255 scale; None when the image is too small for it."""
    if min(reference.shape[:2]) < MS_SSIM_MIN_SIDE:
        return None
    import torch
    from pytorch_msssim import ms_ssim as _ms_ssim

    def tensor(array: np.ndarray) -> "torch.Tensor":
        return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).float().unsqueeze(0)

    with torch.no_grad():
        return float(_ms_ssim(tensor(reference), tensor(decoded), data_range=255.0))
