"""Where in the picture MS-SSIM changed: its change spread over pixels, every scale counted.

The encoder's symbol search (`symbol_search.py`) measures one move in each of
many blocks with a single decoder pass, so it must split the pass's change of
distortion among the moved blocks. Squared error splits exactly; MS-SSIM does
not, being a product over five scales of means over each scale's map. This
module gives its change a shape in pixels from a first-order expansion: per
colour channel c, log MS-SSIM_c = Σ_j w_j · log m_jc, where m_jc is the mean of
scale j's map (contrast-structure for the four finer scales, SSIM for the
coarsest, pytorch-msssim's definition), so a small change moves MS-SSIM by

    Δ MS-SSIM ≈ mean over c of  MS-SSIM_c · Σ_j w_j · Δm_jc / m_jc,

and each map pixel's part of Δm_jc is charged to the full-resolution pixels
under its window's centre. The search rescales the shape to the exact change.

Why every scale: the finest scale, which the search used until session 55,
carries 4.5% of MS-SSIM's weight; the coarser ones, where a move's effect on a
block's mean or a ramp across blocks shows, carry the rest
(results/codec-study/msssim-shape.md measures the difference).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: pytorch-msssim's scale weights, finest first, and its window (11 taps, σ 1.5).
WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW, SIGMA = 11, 1.5
C1, C2 = 0.01**2, 0.03**2  # (K · data range)², data range 1


def scale_maps(image: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
    """pytorch-msssim's per-scale maps of two (1, C, H, W) images on the 0..1 scale,
    finest first, each (C, H_j − 10, W_j − 10) (valid windows): contrast-structure at
    the four finer scales, SSIM at the coarsest."""
    taps = torch.arange(WINDOW, dtype=image.dtype) - WINDOW // 2
    g = torch.exp(-(taps**2) / (2 * SIGMA**2))
    g = g / g.sum()
    channels = image.shape[1]
    rows, cols = g.view(1, 1, -1, 1).expand(channels, 1, -1, 1), g.view(1, 1, 1, -1).expand(channels, 1, 1, -1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, rows, groups=channels), cols, groups=channels)

    maps = []
    a, b = image, target
    for j in range(len(WEIGHTS)):
        mu_a, mu_b = blur(a), blur(b)
        var_a, var_b = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2
        cov = blur(a * b) - mu_a * mu_b
        cs = (2 * cov + C2) / (var_a + var_b + C2)
        if j + 1 < len(WEIGHTS):
            maps.append(cs[0])
            padding = [s % 2 for s in a.shape[-2:]]
            a, b = F.avg_pool2d(a, 2, padding=padding), F.avg_pool2d(b, 2, padding=padding)
        else:
            maps.append((((2 * mu_a * mu_b + C1) / (mu_a**2 + mu_b**2 + C1)) * cs)[0])
    return maps


def value(maps: list[torch.Tensor]) -> torch.Tensor:
    """MS-SSIM from `scale_maps` (pytorch-msssim's, negative means clipped to zero as it does)."""
    means = torch.stack([m.flatten(1).mean(dim=1).clamp_min(0) for m in maps])  # (scales, C)
    weights = means.new_tensor(WEIGHTS).view(-1, 1)
    return torch.prod(means**weights, dim=0).mean()


def loss_shape(before: list[torch.Tensor], after: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """(H, W): how much each pixel's neighbourhood raised 1 − MS-SSIM from `before` to
    `after` (two `scale_maps` results), to first order; it sums to about the change of
    1 − MS-SSIM. A map pixel at scale j sits at the centre of its window, 2^j full
    pixels on a side; its share is spread evenly over them."""
    height, width = size
    means = [m.flatten(1).mean(dim=1).clamp_min(1e-6) for m in before]  # (C,) per scale
    per_channel = torch.prod(torch.stack([m**w for m, w in zip(means, WEIGHTS)]), dim=0)  # MS-SSIM_c
    shape = before[0].new_zeros(height, width)
    for j, (b, a, mean, weight) in enumerate(zip(before, after, means, WEIGHTS)):
        factor = 2**j
        coefficient = per_channel * weight / mean / (b.shape[0] * b[0].numel() * factor * factor)
        change = ((a - b) * coefficient.view(-1, 1, 1)).sum(dim=0)
        placed = F.pad(change, (WINDOW // 2,) * 4)
        placed = placed.repeat_interleave(factor, dim=0).repeat_interleave(factor, dim=1)[:height, :width]
        shape[: placed.shape[0], : placed.shape[1]] -= placed
    return shape
