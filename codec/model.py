"""The cascade codec: an ordered list of residual stages plus their symbol tables.

`CascadeCodec` owns the networks and the per-stage integer tables. It turns an
image into per-stage integer symbols (`analyse`) and symbols back into images
(`synthesise`); bytes and files are the pipeline's business (`pipeline.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..bitstream import SymbolTables
from ..bitstream import contexts
from .stage import ResidualStage, StageConfig

#: The "previous reconstruction" stage 1 refines: flat mid-grey.
BASE_LEVEL = 0.5


@dataclass(frozen=True)
class CodecConfig:
    model_id: str
    stages: tuple[StageConfig, ...]
    # Quality levels: factors on every stage's quantizer step, lowest quality first.
    # The level with factor 1 is the one the networks were trained at.
    qualities: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        if 1.0 not in self.qualities or list(self.qualities) != sorted(self.qualities, reverse=True):
            raise ValueError("quality factors must be decreasing and include 1.0")

    @property
    def nominal_quality(self) -> int:
        return self.qualities.index(1.0)

    @property
    def multiple(self) -> int:
        """Images are padded to a multiple of this (the largest block)."""
        return max(s.block for s in self.stages)

    def to_dict(self) -> dict:
        return {"model_id": self.model_id, "stages": [s.to_dict() for s in self.stages], "qualities": list(self.qualities)}

    @classmethod
    def from_dict(cls, data: dict) -> "CodecConfig":
        return cls(
            model_id=str(data["model_id"]),
            stages=tuple(StageConfig(**s) for s in data["stages"]),
            qualities=tuple(float(q) for q in data.get("qualities", (1.0,))),
        )


@dataclass(frozen=True)
class StageImages:
    """What one stage's decoder works with: the image before it, its linear
    estimate (before the refine CNN) and its reconstruction; (1, 3, H, W) each.
    The post-filter reads all three."""

    previous: torch.Tensor
    estimate: torch.Tensor
    reconstruction: torch.Tensor


#: Called after each stage with (stage index, its StageImages); returns the image the
#: next stage refines (the pipeline's in-loop post-filter). Without one, the reconstruction.
LoopFilter = Callable[[int, StageImages], torch.Tensor]

#: Called for each stage with (stage index, image, previous image, rounded symbols);
#: returns the symbols to send instead (the pipeline's rate-distortion search).
SymbolSearch = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class CascadeCodec(nn.Module):
    def __init__(self, config: CodecConfig):
        super().__init__()
        self.config = config
        self.stages = nn.ModuleList(ResidualStage(c) for c in config.stages)
        # tables[stage][quality level]: filled after training (`training.fit_tables`).
        self.tables: list[dict[int, SymbolTables]] = [{} for _ in config.stages]

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    def base(self, like: torch.Tensor) -> torch.Tensor:
        return torch.full_like(like, BASE_LEVEL)

    def scale(self, quality: int) -> float:
        if not 0 <= quality < len(self.config.qualities):
            raise ValueError(f"quality level {quality} does not exist (this model has 0-{len(self.config.qualities) - 1})")
        return self.config.qualities[quality]

    @torch.no_grad()
    def analyse(
        self,
        x: torch.Tensor,
        stages: int,
        quality: int | None = None,
        images: list | None = None,
        loop_filter: LoopFilter | None = None,
        search: SymbolSearch | None = None,
    ) -> list[torch.Tensor]:
        """Integer symbols (as float tensors) of the first `stages` stages at one quality level.

        Each stage's encoder sees the image the decoder will have before it, built
        from the previous stages' rounded symbols (and, given `loop_filter`, passed
        through it after every stage, the last one included, so that the encoder
        can choose each stage's filter there). Pass a list as `images` to receive
        every stage's `StageImages`. Given `search`, each stage sends the symbols it
        returns instead of the rounded latent, and later stages refine those.
        """
        scale = self.scale(self.config.nominal_quality if quality is None else quality)
        prev = self.base(x)
        symbols = []
        for index, stage in enumerate(self.stages[:stages]):
            q = stage.quantize(stage.analyse(x, prev, scale))
            if search is not None:
                q = search(index, x, prev, q)
            symbols.append(q)
            if index + 1 < stages or images is not None or loop_filter is not None:  # else the last image is not needed
                estimate, recon = stage.synthesise_parts(q, prev, scale)
                staged = StageImages(prev, estimate, recon)
                if images is not None:
                    images.append(staged)
                prev = recon if loop_filter is None else loop_filter(index, staged)
        return symbols

    @torch.no_grad()
    def synthesise(self, symbols: list[torch.Tensor], like: torch.Tensor, qualities: list[int] | None = None) -> list[torch.Tensor]:
        """Reconstructions after each stage, from the symbols of stages 1..len(symbols)."""
        return [images.reconstruction for images in self.synthesise_images(symbols, like, qualities)]

    @torch.no_grad()
    def synthesise_images(
        self,
        symbols: list[torch.Tensor],
        like: torch.Tensor,
        qualities: list[int] | None = None,
        loop_filter: LoopFilter | None = None,
    ) -> list[StageImages]:
        """Every stage's `StageImages`, from the symbols of stages 1..len(symbols);
        `loop_filter` as in `analyse` (called after the last stage too)."""
        if qualities is None:
            qualities = [self.config.nominal_quality] * len(symbols)
        prev = self.base(like)
        out = []
        for index, (stage, q, quality) in enumerate(zip(self.stages, symbols, qualities)):
            estimate, recon = stage.synthesise_parts(q, prev, self.scale(quality))
            out.append(StageImages(prev, estimate, recon))
            prev = recon if loop_filter is None else loop_filter(index, out[-1])
        return out

    def tables_for(self, index: int, quality: int | None = None) -> SymbolTables:
        quality = self.config.nominal_quality if quality is None else quality
        tables = self.tables[index].get(quality)
        if tables is None:
            raise ValueError(f"stage {index + 1} has no symbol tables for quality level {quality}")
        return tables


def symbols_to_array(q: torch.Tensor) -> np.ndarray:
    """(1, C, h, w) float symbols -> (C, h·w) int32 for the entropy coder."""
    return q[0].reshape(q.shape[1], -1).to(torch.int32).cpu().numpy()


def array_to_symbols(arr: np.ndarray, height: int, width: int) -> torch.Tensor:
    """Inverse of `symbols_to_array` for a latent grid of `height`×`width`."""
    return torch.from_numpy(arr.astype(np.float32)).reshape(1, arr.shape[0], height, width)


def stage_prior(previous: torch.Tensor | None, grid: tuple[int, int], channels: int) -> np.ndarray:
    """Prior levels of a (channels, h·w) latent on `grid` (see bitstream.contexts).

    `previous` is the previous stage's (1, C', h', w') symbols, or None for stage 1.
    """
    if previous is None:
        return contexts.stage_prior(None, (0, 0), grid, channels)
    return contexts.stage_prior(symbols_to_array(previous), tuple(previous.shape[-2:]), grid, channels)
