"""Ablation (b): stage 1 plus a decoder-only residual stage, the cascade paper's residual decoder.

The paper's residual cascades add decoders that map the previous output to a
correction without any new code: no bits, only computation at the decoder.
Here that decoder is a refine CNN on the 8-bit image stage 1 decodes to,
trained on the frozen shipped stage 1 at every quality level (so one network
serves all of them). Its rate is stage 1's rate, byte for byte.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from ...codec.networks import RefineNet
from ...codec.pipeline import get_model
from ...codec.training.data import CropSampler


class ResidualDecoder(nn.Module):
    """decoded image -> decoded image + learned correction (the last layer starts at zero)."""

    def __init__(self, features: int = 32, layers: int = 6):
        super().__init__()
        self.net = RefineNet(in_channels=3, features=features, layers=layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return image + self.net(image)

    @torch.no_grad()
    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 H×W×3 -> uint8 H×W×3."""
        x = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))).float().div(255).unsqueeze(0)
        y = self(x).clamp(0, 1).mul(255).round()
        return y[0].permute(1, 2, 0).to(torch.uint8).numpy()


@torch.no_grad()
def _stage1_decoded(codec, x: torch.Tensor, quality: int) -> torch.Tensor:
    """What the decoder of a one-stage file shows: stage 1's reconstruction rounded to 8 bits."""
    symbols = codec.analyse(x, 1, quality)
    return codec.synthesise(symbols, x, [quality])[0].clamp(0, 1).mul(255).round().div(255)


def train_residual_decoder(data_dir: Path, out: Path, steps: int = 600, batch: int = 16, model=None, seed: int = 0) -> Path:
    """Train on random crops at a random quality level per step; save safetensors to `out`."""
    if out.exists():
        return out
    torch.manual_seed(seed)
    rng = random.Random(seed)
    codec = get_model(model).codec
    levels = len(codec.config.qualities)
    decoder = ResidualDecoder()
    sampler = CropSampler.from_folder(data_dir, 128, seed=seed + 11)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=5e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    bar = tqdm(range(steps), desc="residual decoder", dynamic_ncols=True)
    for step in bar:
        x = sampler.batch(batch)
        coarse = _stage1_decoded(codec, x, rng.randrange(levels))
        loss = torch.mean((decoder(coarse) - x) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 10 == 0:
            bar.set_postfix(mse=f"{loss.item():.5f}")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in decoder.state_dict().items()}, str(out))
    return out


def load_residual_decoder(path: Path) -> ResidualDecoder:
    decoder = ResidualDecoder()
    decoder.load_state_dict(load_file(str(path)))
    return decoder.eval()
