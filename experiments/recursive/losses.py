"""Losses shared by the three training modes.

Deterministic autoencoders use the mean squared error, as the paper does.  The VAEs use
the usual negative evidence lower bound with a Gaussian decoder of fixed standard
deviation ``sigma``: ``SSE / (2 sigma^2) + KL(q(z|x) || N(0, I))`` per image.  ``sigma``
sets how much reconstruction is worth against the prior (the paper does not say what it
used); 0.1 on [0, 1] pixels keeps faces recognisable while still pulling codes to the prior.
"""

from __future__ import annotations

import torch


def mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.mean((output - target) ** 2)


def kl_to_standard_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) summed over the code, one value per image."""
    kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)
    return kl.flatten(1).sum(1)


def reparameterise(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """A differentiable sample from N(mean, exp(logvar))."""
    return mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)


def negative_elbo(output: torch.Tensor, target: torch.Tensor, mean: torch.Tensor,
                  logvar: torch.Tensor, sigma: float) -> torch.Tensor:
    """Batch mean of SSE / (2 sigma^2) + KL, the Gaussian-decoder VAE loss."""
    sse = (output - target).pow(2).flatten(1).sum(1)
    return torch.mean(sse / (2.0 * sigma ** 2) + kl_to_standard_normal(mean, logvar))
