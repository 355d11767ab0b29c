"""Probe: does optimising stage 1's continuous latent before rounding beat the encoder's symbol search?

Learned codecs often gain by optimising each image's latent at encode time
(the "amortization gap": Yang, Bamler and Mandt 2020, stochastic Gumbel
annealing, SGA). This probe tries it on the default model's stage 1 for one
Kodak image and one quality level, and reports the stage's objective, the
training-time one: bits/pixel + λ·(0.7·squared error + 0.3/37·(1 − MS-SSIM)),
with bits from the stage's real integer tables (ideal code lengths), for

- `round`: every latent value rounded (the encoder at --effort 0);
- `anneal`: `--steps` Adam steps on the latent with SGA's soft rounding
  (Gumbel-softmax between floor and ceiling, temperature annealed from 0.5 to
  0.02) and the stage's training-time Laplace rate, then rounded; with
  `--straight-through`, hard rounding with a straight-through gradient instead;
- `round+search` and `anneal+search`: the encoder's 4-round symbol search
  (`codec/symbol_search.py`) started from each.

    python scripts/latent_anneal_probe.py --image ../shared/data/kodak/kodim01.png --level 2 --steps 40 --lr 0.01

Results: results/codec-study/latent-anneal.md.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pytorch_msssim import ms_ssim

from cdcodec.codec.model import stage_prior, symbols_to_array
from cdcodec.codec.pipeline import _RateSearch, _stage_lambda, _to_tensor, get_model
from cdcodec.codec.similarity import MS_SSIM_LAMBDA_SCALE
from cdcodec.codec.weights import trained_ms_ssim_share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True)
    parser.add_argument("--level", type=int, default=2)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--straight-through", action="store_true", help="hard rounding with a straight-through gradient instead of SGA")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    codec = get_model(None).codec
    share = trained_ms_ssim_share(codec.config.model_id)
    pixels_rgb = np.array(Image.open(args.image).convert("RGB"))
    height, width = pixels_rgb.shape[:2]
    pixels = height * width
    x = _to_tensor(pixels_rgb, codec.config.multiple)
    prev = codec.base(x)
    stage, scale = codec.stages[0], codec.scale(args.level)
    lam = _stage_lambda(codec, 0, args.level)
    tables = codec.tables_for(0, args.level)

    def distortion(recon: torch.Tensor) -> torch.Tensor:
        r, t = recon[..., :height, :width], x[..., :height, :width]
        return (1 - share) * ((r - t) ** 2).mean() + share * MS_SSIM_LAMBDA_SCALE * (1 - ms_ssim(r.clamp(0, 1), t, data_range=1.0))

    def report(label: str, q: torch.Tensor, seconds: float) -> None:
        grid = tuple(q.shape[-2:])
        bpp = tables.ideal_bits(symbols_to_array(q), stage_prior(None, grid, q.shape[1]), grid) / pixels
        with torch.no_grad():
            d = float(distortion(stage.synthesise(q, prev, scale)))
        print(f"{label:14s} objective {bpp + lam * d:.5f}  bpp {bpp:.4f}  distortion {d:.6f}  {seconds:.0f} s", flush=True)

    with torch.no_grad():
        y = stage.analyse(x, prev, scale)
    rounded = stage.quantize(y)
    report("round", rounded, 0)
    start = time.time()
    latent = y.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([latent], lr=args.lr)
    for step in range(args.steps):
        if args.straight_through:
            soft = latent + (torch.round(latent) - latent).detach()
        else:
            tau = 0.5 * (0.02 / 0.5) ** (step / max(1, args.steps - 1))
            floor = torch.floor(latent)
            up = (latent - floor).clamp(1e-4, 1 - 1e-4)
            logits = torch.stack([-torch.atanh(up) / tau, -torch.atanh(1 - up) / tau], dim=-1)
            soft = floor + F.gumbel_softmax(logits, tau=tau, hard=False)[..., 1]
        loss = stage.prior.bits(soft, scale) / pixels + lam * distortion(stage.synthesise(soft, prev, scale))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    annealed = stage.quantize(latent.detach())
    report("anneal", annealed, time.time() - start)
    for label, first in (("round+search", rounded), ("anneal+search", annealed)):
        start = time.time()
        searched = _RateSearch(codec, args.level, (height, width), 4, share)(0, x, prev, first)
        report(label, searched, time.time() - start)


if __name__ == "__main__":
    main()
