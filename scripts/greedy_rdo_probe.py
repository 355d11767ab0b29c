"""Would a greedy rate-distortion search over stage 1's symbols pay? (a probe, not a feature)

The encoder rounds each latent to the nearest integer. Because the decoder's
refine CNN is nonlinear and the rate depends on the symbols, the nearest
integer need not minimise rate + λ·distortion. This probe searches a little:
from the rounded symbols of stage 1 it takes a few rounds of single-symbol
moves by ±1, each move scored by a second-order estimate (the distortion
gradient through the whole stage decoder, the block transform's curvature, and
the change of the stage's training-time Laplace rate model), accepts the best
share of improving moves for which the true objective (decoder run, Laplace
rate) falls, and encodes the result as a normal file (post-filters off in both
arms, so that only the symbols differ). Later stages are left as they are; they
code what the searched stage 1 leaves. Prints every stage-1 point of both arms
(rate from real bytes) and the BD-rate in PSNR.

    python scripts/greedy_rdo_probe.py --images 2 --rounds 4 --lambda-factor 1
    python scripts/greedy_rdo_probe.py --images 2 --rounds 4 --lambda-factor 3

`--lambda-factor` multiplies the stage's λ in the search (the Laplace model
overstates what context coding charges for a nonzero symbol, so a larger
factor favours distortion). `--images n` takes every 24/n-th Kodak image.
Each run took about 5 minutes on one thread for two images (session 22).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image

from cdcodec.bench import metrics
from cdcodec.bench.bdrate import bd_rate
from cdcodec.codec.model import CascadeCodec
from cdcodec.codec.networks import lambda_for_step
from cdcodec.codec.pipeline import decode, encode, get_model

from kodak_sample import kodak_sample


def search(stage, x: torch.Tensor, prev: torch.Tensor, scale: float, rounds: int, lambda_factor: float) -> torch.Tensor:
    with torch.no_grad():
        symbols = torch.round(stage.analyse(x, prev, scale))
    step = stage.config.step * scale
    lam = lambda_factor * lambda_for_step(step)
    pixels = x.shape[2] * x.shape[3]
    norms = (stage.transform.synthesis.weight.detach() ** 2).sum(dim=(1, 2, 3)).view(1, -1, 1, 1)
    curvature = lam * step * step * norms / (3 * pixels)

    def objective(q: torch.Tensor) -> torch.Tensor:
        recon = stage.synthesise(q, prev, scale)
        return stage.prior.bits(q) / pixels + lam * ((recon - x) ** 2).mean()

    for _ in range(rounds):
        q = symbols.clone().requires_grad_(True)
        current = objective(q)
        current.backward()
        with torch.no_grad():
            gain = torch.zeros_like(symbols)
            move = torch.zeros_like(symbols)
            here = stage.prior.symbol_bits(symbols)
            for delta in (-1.0, 1.0):
                estimate = q.grad * delta + curvature + (stage.prior.symbol_bits(symbols + delta) - here) / pixels
                better = estimate < gain
                gain = torch.where(better, estimate, gain)
                move = torch.where(better, torch.full_like(symbols, delta), move)
            candidates = gain[move != 0]
            share = 1.0
            while candidates.numel() and share >= 1 / 32:
                threshold = torch.quantile(candidates.float(), share) if share < 1 else 0.0
                trial = symbols + move * ((move != 0) & (gain <= threshold))
                if objective(trial) < current:
                    symbols = trial
                    break
                share /= 2
    return symbols


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--lambda-factor", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = get_model(None)
    plain = CascadeCodec.analyse

    def searched(self, x, stages, quality=None, reconstructions=None):
        scale = self.scale(self.config.nominal_quality if quality is None else quality)
        symbols = [search(self.stages[0], x, self.base(x), scale, args.rounds, args.lambda_factor).detach()]
        assert stages == 1 and reconstructions is None, "the probe searches stage-1-only files without post-filters"
        return symbols

    images = kodak_sample(args.images)
    means = {}
    for name, analyse in (("rounded", plain), ("searched", searched)):
        CascadeCodec.analyse = analyse
        points = []
        for quality in range(len(loaded.codec.config.qualities)):
            per_image = []
            for path in images:
                image = np.asarray(Image.open(path).convert("RGB"))
                data = encode(image, stages=1, quality=quality, model=loaded, post_filters=False)
                m = metrics.measure(image, decode(data, model=loaded), len(data))
                per_image.append((m["bpp"], m["psnr"]))
                print(f"{path.name} level {quality} {name}: {m['bpp']:.4f} bpp {m['psnr']:.3f} dB", flush=True)
            points.append(np.mean(per_image, axis=0))
        means[name] = np.array(points)
    CascadeCodec.analyse = plain
    ref, test = means["rounded"], means["searched"]
    print(f"stage 1, BD-rate searched against rounded (PSNR): {bd_rate(ref[:, 0], ref[:, 1], test[:, 0], test[:, 1]):+.2f}%")


if __name__ == "__main__":
    main()
