"""The building blocks of a cascade stage: a linear block transform and two small CNNs.

Why this shape: on our compute a codec has to learn fast. Each stage therefore
starts from a transform that is already good, an orthonormal block transform
initialised from the principal components of the signal it codes (what JPEG's
DCT approximates), and adds learned nonlinear corrections whose last layer starts
at zero. At step 0 a stage is a well-tuned linear transform code; training can
only move it from there.

- `BlockTransform`: analysis = strided convolution (stride = block), synthesis =
  the matching transposed convolution. Both start as the PCA basis. With an
  overlap the kernels reach that many pixels beyond the block on every side (a
  lapped transform: an edge or a ramp across a block border is no longer coded
  as two halves with basis functions that stop there); the margins start at
  zero and grow in training (results/codec-study/lapped-stage1.md).
- `EncoderBranch`: a nonlinear correction to the latent, computed from the
  signal and its context (lets the encoder adapt, e.g. to spend fewer bits).
- `RefineNet`: a full-resolution residual CNN on the decoder side that sees the
  linear reconstruction and the previous stage's image; it removes block edges
  and predicts detail the coarse latent cannot carry.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class BlockTransform(nn.Module):
    """Linear analysis/synthesis pair over `block`×`block` patches, at stride `block`.

    `overlap` widens both kernels by that many pixels on every side (zero-padded
    at the picture's border), so neighbouring blocks' basis functions overlap;
    the latent grid stays one symbol vector per block.
    """

    def __init__(self, block: int, channels: int = 3, overlap: int = 0):
        super().__init__()
        self.block, self.overlap = block, overlap
        self.latent_channels = channels * block * block
        size = block + 2 * overlap
        self.analysis = nn.Conv2d(channels, self.latent_channels, size, stride=block, padding=overlap, bias=False)
        self.synthesis = nn.ConvTranspose2d(self.latent_channels, channels, size, stride=block, padding=overlap, bias=False)
        self.reset_orthonormal(torch.eye(self.latent_channels))

    @torch.no_grad()
    def reset_orthonormal(self, basis: torch.Tensor) -> None:
        """Set both transforms from an orthonormal basis (columns = basis vectors), in
        the kernels' centre; margins (with an overlap) zero.

        A patch is flattened in (channel, row, column) order, the layout of a
        convolution kernel, so `basis[:, k]` becomes the k-th output filter.
        """
        shape = (self.latent_channels, -1, self.block, self.block)
        self.set_centre(basis.T.reshape(shape), basis.T.reshape(shape))

    @torch.no_grad()
    def set_centre(self, analysis: torch.Tensor, synthesis: torch.Tensor) -> None:
        """Both kernels from block-sized filters (C, channels, block, block): the centre
        of the kernel, zero margins. A block transform's own weights give the same transform."""
        centre = slice(self.overlap, self.overlap + self.block)
        for layer, filters in ((self.analysis, analysis), (self.synthesis, synthesis)):
            layer.weight.zero_()
            layer.weight[:, :, centre, centre] = filters.to(layer.weight)

    def analyse(self, x: torch.Tensor) -> torch.Tensor:
        return self.analysis(x)

    def synthesise(self, y: torch.Tensor) -> torch.Tensor:
        return self.synthesis(y)


#: Nonlinearities a stage may use. LeakyReLU is the default; SELU is the recursive
#: paper's choice, kept selectable so experiments/codec_study can compare them.
ACTIVATIONS = {"leaky_relu": lambda: nn.LeakyReLU(0.1), "selu": nn.SELU}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r} (choose from {', '.join(ACTIVATIONS)})")
    return ACTIVATIONS[name]()


def _zero_last(module: nn.Conv2d) -> nn.Conv2d:
    nn.init.zeros_(module.weight)
    if module.bias is not None:
        nn.init.zeros_(module.bias)
    return module


class EncoderBranch(nn.Module):
    """Nonlinear latent correction: (signal, context) at full resolution -> latent grid."""

    def __init__(self, block: int, latent_channels: int, in_channels: int = 6, features: int = 32, act: str = "leaky_relu"):
        super().__init__()
        hidden = max(features, 2 * in_channels)
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1),
            activation(act),
            nn.Conv2d(hidden, hidden, block, stride=block),
            activation(act),
            _zero_last(nn.Conv2d(hidden, latent_channels, 1)),
        )

    def forward(self, signal: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([signal, context], dim=1))


class RefineNet(nn.Module):
    """Residual CNN at full resolution: (linear reconstruction, context) -> correction."""

    def __init__(self, in_channels: int = 6, features: int = 32, layers: int = 4, out_channels: int = 3, act: str = "leaky_relu"):
        super().__init__()
        body: list[nn.Module] = [nn.Conv2d(in_channels, features, 3, padding=1), activation(act)]
        for _ in range(layers - 2):
            body += [nn.Conv2d(features, features, 3, padding=1), activation(act)]
        body.append(_zero_last(nn.Conv2d(features, out_channels, 3, padding=1)))
        self.body = nn.Sequential(*body)

    def forward(self, estimate: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(estimate if context is None else torch.cat([estimate, context], dim=1))


class LaplacePrior(nn.Module):
    """Per-channel zero-mean Laplace over integer symbols: the training-time rate model.

    Only a differentiable stand-in for the rate while training; the shipped
    integer tables are fitted afterwards from real symbol histograms, and real
    rates are counted from coded bytes.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(channels))

    def bits(self, y: torch.Tensor, step_factor: float = 1.0) -> torch.Tensor:
        """Total bits of the (noisy or rounded) symbols `y` (N, C, h, w)."""
        return self.symbol_bits(y, step_factor).sum()

    def symbol_bits(self, y: torch.Tensor, step_factor: float = 1.0) -> torch.Tensor:
        """Bits of each symbol of `y`, same shape. The scales are learnt at the trained
        step; symbols of a quantizer `step_factor` times coarser spread that much less."""
        scale = (self.log_scale.exp() / step_factor).clamp_min(0.05).view(1, -1, 1, 1)
        upper = _laplace_cdf((y + 0.5) / scale)
        lower = _laplace_cdf((y - 0.5) / scale)
        prob = (upper - lower).clamp_min(1e-9)
        return -prob.log2()


def _laplace_cdf(z: torch.Tensor) -> torch.Tensor:
    return 0.5 + 0.5 * torch.sign(z) * (1 - torch.exp(-z.abs()))


def lambda_for_step(step: float, samples_per_pixel: int = 3) -> float:
    """Rate-distortion weight matched to a quantizer step (pixels in [0, 1]).

    For a uniform quantizer at high rate, D = step²/12 per coefficient and
    dR/dstep = -1/(step·ln 2); the optimum of R + λ·D per pixel then sits at
    λ = 6·samples_per_pixel / (step²·ln 2). Training with this λ keeps the
    learned parts consistent with the fixed step.
    """
    return 6.0 * samples_per_pixel / (step * step * math.log(2))
