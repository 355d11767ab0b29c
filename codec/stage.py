"""One stage of the cascade: code what the previous stages left, add it back.

Dataflow of stage k (stage 1 sees a flat mid-grey image as its "previous")::

    original x ──┐
                 ├─ r = x - prev ─► analysis ─► y/step ─► round ─► symbols ─► entropy coder
    prev ────────┘        (BlockTransform + EncoderBranch)              │
                                                                        ▼
    prev ─────────────────────────────────────► synthesis ◄─── symbols·step
                                                   │ (BlockTransform + RefineNet)
                                                   ▼
                                   recon_k = prev + residual

The decoder needs only `prev` and the symbols, so `decode --stages k` stops
after stage k. The symbols reach the entropy coder through fixed integer tables
(`SymbolTables`), never through a float computation on the image.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .networks import BlockTransform, EncoderBranch, LaplacePrior, RefineNet

#: Latent values are clamped to int16, the range the entropy coder accepts.
SYMBOL_LIMIT = 32767


@dataclass(frozen=True)
class StageConfig:
    """Architecture of one stage; stored in the weights' metadata."""

    block: int  # side of the transform block (also the latent's stride)
    step: float  # quantizer step in latent units (pixels in [0, 1])
    refine_features: int = 32
    refine_layers: int = 4
    encoder_features: int = 32
    # Where the block transform starts: "pca" of the residual this stage codes, or
    # "previous", a copy of the previous stage's transform (same block and overlap), so that
    # the previous stage's symbol of each coefficient can serve as coding context.
    basis: str = "pca"
    activation: str = "leaky_relu"  # of the encoder branch and refine CNN (see networks.ACTIVATIONS)
    # Whether the refine CNN also sees the quality level, as a constant input plane of
    # log2(step factor) (0 at the trained level). Without it the CNN is trained at one
    # step and over- or under-corrects at the others (results/codec-study/postfilter.md).
    refine_sees_quality: bool = False
    # Pixels the block transform's kernels reach beyond the block on every side (a
    # lapped transform, networks.BlockTransform); 0: disjoint blocks.
    overlap: int = 0

    def __post_init__(self) -> None:
        # A symbol's synthesis kernel reaches `overlap` pixels beyond its block, and each
        # 3×3 layer of the refine CNN one pixel further. The encoder's symbol search
        # measures moves in blocks `search_cell` apart in one pass, which holds while a
        # symbol changes no pixel more than (search_cell − 1)/2 blocks beyond its own
        # block: half a block with cells of 2 blocks, a whole one with cells of 3.
        if self.overlap < 0 or self.overlap > self.block - 2:
            raise ValueError(f"a stage with {self.block}-pixel blocks overlaps them by 0 to {self.block - 2} pixels, not {self.overlap}")
        if self.refine_layers < 2 or self.reach > self.block:
            raise ValueError(
                f"a stage with {self.block}-pixel blocks and overlap {self.overlap} takes 2 to {self.block - self.overlap} refine layers, not {self.refine_layers}"
            )

    @property
    def reach(self) -> int:
        """Pixels beyond its block that a symbol's change can move in the stage's image."""
        return self.overlap + self.refine_layers

    @property
    def search_cell(self) -> int:
        """Blocks on a side of the cells in which the symbol search measures one move
        per decoder pass: 2 while the reach is at most half a block (4 passes a round),
        otherwise 3 (9 passes), which a lapped stage of small blocks needs."""
        return 2 if self.reach <= self.block // 2 else 3

    def to_dict(self) -> dict:
        return asdict(self)


class ResidualStage(nn.Module):
    def __init__(self, config: StageConfig):
        super().__init__()
        self.config = config
        self.transform = BlockTransform(config.block, overlap=config.overlap)
        channels = self.transform.latent_channels
        self.encoder = EncoderBranch(config.block, channels, features=config.encoder_features, act=config.activation)
        refine_inputs = 7 if config.refine_sees_quality else 6
        self.refine = RefineNet(refine_inputs, features=config.refine_features, layers=config.refine_layers, act=config.activation)
        self.prior = LaplacePrior(channels)

    @property
    def latent_channels(self) -> int:
        return self.transform.latent_channels

    def analyse(self, x: torch.Tensor, prev: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """Continuous latent in symbol units (before rounding); `scale` multiplies the step."""
        residual = x - prev
        y = self.transform.analyse(residual) + self.encoder(residual, prev)
        return y / (self.config.step * scale)

    def quantize(self, y: torch.Tensor) -> torch.Tensor:
        return torch.round(y).clamp(-SYMBOL_LIMIT, SYMBOL_LIMIT)

    def linear_estimate(self, symbols: torch.Tensor, prev: torch.Tensor, scale: float | torch.Tensor = 1.0) -> torch.Tensor:
        """The previous image plus the block transform's synthesis, before the refine CNN."""
        return prev + self.transform.synthesise(symbols * (self.config.step * scale))

    def synthesise(self, symbols: torch.Tensor, prev: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """Reconstruction after this stage, from integer symbols and the previous image."""
        return self.synthesise_parts(symbols, prev, scale)[1]

    def synthesise_parts(self, symbols: torch.Tensor, prev: torch.Tensor, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """(linear estimate, reconstruction): the reconstruction and what it was before the
        refine CNN (the post-filter reads both)."""
        estimate = self.linear_estimate(symbols, prev, scale)
        return estimate, estimate + self.correction(estimate, prev, scale)

    def correction(self, estimate: torch.Tensor, prev: torch.Tensor, scale: float | torch.Tensor = 1.0) -> torch.Tensor:
        """What the refine CNN adds to the linear estimate. `scale` is the step factor of
        the quality level: a number, or one per image as an (N, 1, 1, 1) tensor."""
        if not self.config.refine_sees_quality:
            return self.refine(estimate, prev)
        level = torch.log2(torch.as_tensor(scale, dtype=prev.dtype, device=prev.device)).reshape(-1, 1, 1, 1)
        plane = level.expand(prev.shape[0], 1, *prev.shape[-2:])
        return self.refine(estimate, torch.cat([prev, plane], dim=1))

    def forward(self, x: torch.Tensor, prev: torch.Tensor, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass: (reconstruction, estimated bits, linear estimate), at the step times `scale`.

        Rate uses additive uniform noise (a differentiable stand-in for rounding);
        the reconstruction uses true rounding with a straight-through gradient,
        so the decoder learns on the symbols it will really receive. The linear
        estimate is returned for the optional per-layer loss (TrainSettings).
        """
        y = self.analyse(x, prev, scale)
        noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        bits = self.prior.bits(noisy, scale)
        rounded = y + (torch.round(y) - y).detach()
        estimate = self.linear_estimate(rounded, prev, scale)
        return estimate + self.correction(estimate, prev, scale), bits, estimate
