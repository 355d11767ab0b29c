"""MS-SSIM's change spread over pixels, for the encoder's symbol search (`codec/msssim_shape.py`)."""

from __future__ import annotations

import torch
from pytorch_msssim import ms_ssim

from cdcodec.codec import msssim_shape
from cdcodec.codec.pipeline import _to_tensor

from imagegen import smooth_image


def noisy_pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(a noisy copy, the original) of a 176×200 synthetic photo: big enough for five scales."""
    image = _to_tensor(smooth_image(176, 200, seed=seed), 1)
    noise = torch.randn(image.shape, generator=torch.Generator().manual_seed(seed))
    return (image + 0.04 * noise).clamp(0, 1), image


def test_the_maps_give_pytorch_msssims_value_to_the_bit():
    """The search computes the exact change from these maps, so they must be pytorch-msssim's own."""
    for seed in (0, 1):
        noisy, image = noisy_pair(seed)
        assert torch.equal(msssim_shape.value(msssim_shape.scale_maps(noisy, image)), ms_ssim(noisy, image, data_range=1.0))


def test_the_shape_sums_to_the_change_and_sits_where_the_image_changed():
    noisy, image = noisy_pair()
    changed = noisy.clone()
    changed[..., 80:96, 96:112] = (changed[..., 80:96, 96:112] + 0.05).clamp(0, 1)
    shape = msssim_shape.loss_shape(msssim_shape.scale_maps(noisy, image), msssim_shape.scale_maps(changed, image), (176, 200))
    assert shape.shape == (176, 200)
    rise = float(ms_ssim(noisy, image, data_range=1.0) - ms_ssim(changed, image, data_range=1.0))
    assert rise > 0
    assert abs(float(shape.sum()) - rise) < 0.05 * rise  # first order: close, not exact
    # Most of it near the changed block (windows of the coarser scales reach further).
    near = shape[56:120, 72:136].abs().sum()
    assert near > 0.8 * shape.abs().sum()


def test_no_change_no_shape():
    noisy, image = noisy_pair()
    maps = msssim_shape.scale_maps(noisy, image)
    assert torch.count_nonzero(msssim_shape.loss_shape(maps, maps, (176, 200))) == 0
