"""The paper's convolutional autoencoder (Ray & Hannon 2022, section 4.2).

Seven stride-2 "same"-padded convolutions down (kernel 3, the first kernel 5), seven
stride-2 transposed convolutions up (kernel 3, the last kernel 5, sigmoid output), the
number of filters doubling on the way down and halving on the way up.  A 128x128 input
ends as a 1x1 code with ``base_width * 2**6`` channels.

The layers are numbered 1..n from the image: encoder layer k maps the tensor at *level*
k-1 to level k, and decoder layer k maps level k back to level k-1.  That numbering is
what the recursive training needs ("decoder layer k reproduces the input of encoder
layer k") and what shared batch norm needs: the normalization of level k is used both
by encoder layer k (which produces level k) and by decoder layer k+1 (which
reconstructs level k), so in ``norm="shared"`` mode they hold the *same* module.

Batch norm sits between convolution and activation (conv -> BN -> activation); the paper
does not say which order it used.  The last decoder layer (the image) has no
normalization: no encoder layer produces the image, so there is nothing to share.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

NORMS = ("none", "batch", "shared")
ACTIVATIONS = ("selu", "relu")


@dataclass(frozen=True)
class ArchSpec:
    """Everything that fixes the shape of one autoencoder.

    ``base_width`` is the number of filters of the first encoder layer; the paper does
    not give it.  ``n_layers`` defaults to the paper's 7 (for a 128x128 input) and is
    smaller in the tests, which use tiny images.
    """

    n_layers: int = 7
    base_width: int = 8
    activation: str = "selu"
    norm: str = "none"
    variational: bool = False
    first_kernel: int = 5
    kernel: int = 3

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.n_layers < 2:
            raise ValueError("need at least 2 layers")

    def channels(self, level: int) -> int:
        """Channels of the tensor at ``level`` (0 is the RGB image)."""
        return 3 if level == 0 else self.base_width * 2 ** (level - 1)

    @property
    def latent_channels(self) -> int:
        return self.channels(self.n_layers)

    def as_dict(self) -> dict:
        return asdict(self)


def _activation(name: str) -> nn.Module:
    return nn.SELU() if name == "selu" else nn.ReLU()


def _kernel(spec: ArchSpec, layer: int) -> int:
    return spec.first_kernel if layer == 1 else spec.kernel


class EncoderLayer(nn.Module):
    """conv(stride 2) -> norm -> activation: level k-1 to level k."""

    def __init__(self, conv: nn.Conv2d, norm: nn.Module, act: nn.Module):
        super().__init__()
        self.conv, self.norm, self.act = conv, norm, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class DecoderLayer(nn.Module):
    """transposed conv(stride 2) -> norm -> activation: level k back to level k-1."""

    def __init__(self, deconv: nn.ConvTranspose2d, norm: nn.Module, act: nn.Module):
        super().__init__()
        self.conv, self.norm, self.act = deconv, norm, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class GaussianHead(nn.Module):
    """The variational bottleneck: level n-1 to a mean and log-variance at level n.

    Replaces the last encoder layer of a VAE; both outputs are linear (no norm, no
    activation) because they parameterise a distribution, not a feature map.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int):
        super().__init__()
        pad = kernel // 2
        self.mean = nn.Conv2d(in_ch, out_ch, kernel, stride=2, padding=pad)
        self.logvar = nn.Conv2d(in_ch, out_ch, kernel, stride=2, padding=pad)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mean(x), self.logvar(x).clamp(-10.0, 10.0)


class Autoencoder(nn.Module):
    """Encoder layers 1..n and decoder layers 1..n, indexed so that ``encoder[k-1]`` and
    ``decoder[k-1]`` are the matching pair k.

    ``forward`` runs the whole chain; ``encode_levels`` / ``decode_levels`` expose every
    intermediate tensor because both recursive and per-layer training compare decoder
    outputs with encoder inputs level by level.
    """

    def __init__(self, spec: ArchSpec):
        super().__init__()
        self.spec = spec
        n = spec.n_layers
        level_norms = self._level_norms(spec)
        enc, dec = [], []
        for k in range(1, n + 1):
            kern, pad = _kernel(spec, k), _kernel(spec, k) // 2
            cin, cout = spec.channels(k - 1), spec.channels(k)
            if k == n and spec.variational:
                enc.append(GaussianHead(cin, cout, kern))
            else:
                conv = nn.Conv2d(cin, cout, kern, stride=2, padding=pad)
                enc.append(EncoderLayer(conv, level_norms["enc"][k], _activation(spec.activation)))
            deconv = nn.ConvTranspose2d(cout, cin, kern, stride=2, padding=pad, output_padding=1)
            if k == 1:
                dec.append(DecoderLayer(deconv, nn.Identity(), nn.Sigmoid()))
            else:
                dec.append(DecoderLayer(deconv, level_norms["dec"][k], _activation(spec.activation)))
        self.encoder = nn.ModuleList(enc)
        self.decoder = nn.ModuleList(dec)

    @staticmethod
    def _level_norms(spec: ArchSpec) -> dict[str, dict[int, nn.Module]]:
        """Normalization for encoder layer k (level k) and decoder layer k (level k-1).

        ``shared`` hands decoder layer k the very module of encoder layer k-1: both
        produce a tensor at level k-1, so one set of statistics and one affine
        transform serve both.
        """
        n = spec.n_layers
        if spec.norm == "none":
            return {"enc": {k: nn.Identity() for k in range(1, n + 1)},
                    "dec": {k: nn.Identity() for k in range(2, n + 1)}}
        enc = {k: nn.BatchNorm2d(spec.channels(k)) for k in range(1, n + 1)}
        if spec.norm == "batch":
            dec = {k: nn.BatchNorm2d(spec.channels(k - 1)) for k in range(2, n + 1)}
        else:
            dec = {k: enc[k - 1] for k in range(2, n + 1)}
        return {"enc": enc, "dec": dec}

    # -- pieces -----------------------------------------------------------------
    def encode_levels(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """[level 0 (= x), level 1, ..., level ``upto``] through the encoder.

        For a VAE the last level is the posterior mean (the deterministic code).
        """
        upto = self.spec.n_layers if upto is None else upto
        levels = [x]
        for k in range(1, upto + 1):
            out = self.encoder[k - 1](levels[-1])
            levels.append(out[0] if isinstance(out, tuple) else out)
        return levels

    def decode_levels(self, z: torch.Tensor, start: int | None = None) -> list[torch.Tensor]:
        """Decoder outputs from level ``start``-1 down to level 0: [level start-1, ..., image].

        ``z`` is a tensor at level ``start`` (default: the code at level n).
        """
        start = self.spec.n_layers if start is None else start
        outs, h = [], z
        for k in range(start, 0, -1):
            h = self.decoder[k - 1](h)
            outs.append(h)
        return outs

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x) (VAE only)."""
        if not self.spec.variational:
            raise TypeError("posterior() needs a variational model")
        h = self.encode_levels(x, upto=self.spec.n_layers - 1)[-1]
        return self.encoder[-1](h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic reconstruction (a VAE decodes its posterior mean)."""
        return self.decode_levels(self.encode_levels(x)[-1])[-1]

    @torch.no_grad()
    def sample(self, n: int, latent_hw: int = 1,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Faces decoded from codes drawn from the N(0, I) prior.

        ``latent_hw`` is the code's spatial size: image size / 2**n_layers (1 for the
        paper's 128x128 faces and 7 layers).
        """
        c = self.spec.latent_channels
        device = next(self.parameters()).device
        z = torch.randn(n, c, latent_hw, latent_hw, generator=generator).to(device)
        return self.decode_levels(z)[-1]
