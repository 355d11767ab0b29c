"""Loss terms of the paper's sub-problems and of the VAE/WAE bases.

Reconstruction is the per-pixel mean squared error (the paper's squared L2
norm, divided by the pixel count so that loss weights do not depend on image
size). Adversarial terms follow the paper's form with the mean operator M and
a small epsilon inside the logs.
"""

from __future__ import annotations

import torch


def reconstruction(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean over pixels and batch of (x - y)^2."""
    return torch.mean((x - y) ** 2)


def discriminator_loss(p_real: torch.Tensor, p_fake: torch.Tensor, eps: float) -> torch.Tensor:
    """-M[log DC(real) + log(1 - DC(fake))]: the discriminator's side of the game."""
    return -torch.mean(torch.log(p_real + eps) + torch.log(1.0 - p_fake + eps))


def generator_loss(p_fake: torch.Tensor, eps: float) -> torch.Tensor:
    """-M[log DC(fake)]: the non-saturating generator (encoder or decoder) term."""
    return -torch.mean(torch.log(p_fake + eps))


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)), summed over latent dims, mean over batch."""
    per_image = 0.5 * torch.sum(mean**2 + logvar.exp() - 1.0 - logvar, dim=1)
    return per_image.mean()


def mmd_imq(z: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD^2 between two samples with the inverse multiquadratic kernel.

    WAE-MMD's choice (Tolstikhin et al.): the kernel C / (C + |a - b|^2) summed
    over several scales around C = 2 * latent_dim, the value that matches a unit
    Gaussian prior.
    """
    n = z.shape[0]
    if n < 2:
        raise ValueError("MMD needs at least two samples")
    dim = z.shape[1]
    both = torch.cat([z, prior], dim=0)
    dist2 = torch.cdist(both, both).pow(2)
    off_diag = 1.0 - torch.eye(n, device=z.device, dtype=z.dtype)
    total = torch.zeros((), device=z.device, dtype=z.dtype)
    for scale in (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0):
        c = 2.0 * dim * scale
        k = c / (c + dist2)
        k_zz, k_pp, k_zp = k[:n, :n], k[n:, n:], k[:n, n:]
        total = total + ((k_zz + k_pp) * off_diag).sum() / (n * (n - 1)) - 2.0 * k_zp.mean()
    return total
