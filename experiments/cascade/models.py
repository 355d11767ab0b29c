"""The paper's fully connected networks (its Figs. 12-14) and the decoder cascade.

No convolutions, as in the paper. Encoder: FC -> LeakyReLU -> FC to the latent.
Decoder: FC -> LeakyReLU -> FC -> Tanh, fed the latent (decoder 1) or the
previous decoder's output (decoders 2..N). Discriminator: FC -> LeakyReLU -> FC
-> Sigmoid, fed a latent (AAE) or an image (adversarial cascades).
"""

from __future__ import annotations

import torch
from torch import nn

from .config import TrainConfig

IMAGE_DIM = 28 * 28


class Encoder(nn.Module):
    """Maps a flattened image to a latent; a variational one also gives log-variances."""

    def __init__(self, cfg: TrainConfig, variational: bool = False):
        super().__init__()
        self.variational = variational
        out = 2 * cfg.latent_dim if variational else cfg.latent_dim
        self.net = nn.Sequential(
            nn.Linear(IMAGE_DIM, cfg.hidden),
            nn.LeakyReLU(cfg.leaky_slope),
            nn.Linear(cfg.hidden, out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The latent a codec would transmit: the mean for a variational encoder."""
        return self.moments(x)[0]

    def moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(mean, log-variance) for a variational encoder, (latent, None) otherwise."""
        h = self.net(x)
        if not self.variational:
            return h, None
        mean, logvar = h.chunk(2, dim=1)
        return mean, logvar


class Decoder(nn.Module):
    """One decoder of the cascade; its output lies in [-1, 1] through Tanh."""

    def __init__(self, cfg: TrainConfig, in_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, cfg.hidden),
            nn.LeakyReLU(cfg.leaky_slope),
            nn.Linear(cfg.hidden, IMAGE_DIM),
            nn.Tanh(),
        )

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.net(v)


class Discriminator(nn.Module):
    """Probability that its input is real (a data image, or a prior sample)."""

    def __init__(self, cfg: TrainConfig, in_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, cfg.disc_hidden),
            nn.LeakyReLU(cfg.leaky_slope),
            nn.Linear(cfg.disc_hidden, 1),
            nn.Sigmoid(),
        )

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.net(v).squeeze(1)


def next_stage(previous: torch.Tensor, decoder_out: torch.Tensor, residual: bool) -> torch.Tensor:
    """Reconstruction of a later stage from the previous one and its decoder's output.

    General cascade: the decoder's output replaces the previous reconstruction.
    Residual cascade: it is a correction added to the previous reconstruction
    (the paper's r_{n-1} = x - y_{n-1} is the decoder's target).
    """
    return previous + decoder_out if residual else decoder_out


class CascadeAutoencoder(nn.Module):
    """An encoder and N serial decoders; returns every stage's reconstruction.

    Stage 1 is decoder 1 on the latent (y_0 = 0 for the residual form, so both
    forms agree there); stage n > 1 applies decoder n to stage n-1's output.
    """

    def __init__(self, encoder: Encoder, decoders: list[Decoder], residual: bool):
        super().__init__()
        self.encoder = encoder
        self.decoders = nn.ModuleList(decoders)
        self.residual = residual

    def decode_stages(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Every stage's reconstruction from a latent (a codec decodes from here)."""
        outputs = [self.decoders[0](z)]
        for decoder in self.decoders[1:]:
            previous = outputs[-1]
            outputs.append(next_stage(previous, decoder(previous), self.residual))
        return outputs

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.decode_stages(self.encoder(x))
