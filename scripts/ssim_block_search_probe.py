"""Prototype: the measured block search for a distortion that holds MS-SSIM (a lead, not shipped).

The shipped search (`codec/symbol_search.py`) measures every block's move only
for squared error alone (`encode --tune psnr`), which splits into pixels; a
distortion with MS-SSIM in it keeps the shares. Here the block search runs for
the model's own mix too, charging the MS-SSIM term's change to pixels in the
shape of the finest-scale SSIM map's change (Gaussian window 11, σ 1.5: exact
and local), scaled in each pass so that it sums to the term's exact change
(nothing where the shape and the exact change disagree in sign). It encodes
Kodak images at each level with the shipped search and with this one (both
4 rounds by default), decodes every stage prefix, and prints both arms' mean
points and the BD-rate of the prototype against the shipped search (real
bytes; PCHIP on upper envelopes, MS-SSIM in dB).

    python scripts/ssim_block_search_probe.py --images 4 --levels 0,2,4 --threads 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pytorch_msssim import ms_ssim

from cdcodec.bench import metrics
from cdcodec.bitstream import truncate, unpack
from cdcodec.codec import symbol_search
from cdcodec.codec.pipeline import decode, encode, get_model
from cdcodec.codec.similarity import MS_SSIM_LAMBDA_SCALE, MS_SSIM_MIN_SIDE

from paired_points import print_paired

KODAK = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "kodak"


def ssim_map(image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(H, W): single-scale SSIM per pixel, averaged over colours (zero-padded Gaussian window)."""
    g = torch.exp(-((torch.arange(11, dtype=image.dtype) - 5) ** 2) / (2 * 1.5**2))
    window = (g[:, None] * g[None, :] / g.sum() ** 2).expand(3, 1, 11, 11)
    blur = lambda t: F.conv2d(t, window, padding=5, groups=3)  # noqa: E731
    mu_a, mu_b = blur(image), blur(target)
    var_a, var_b = blur(image * image) - mu_a**2, blur(target * target) - mu_b**2
    cov = blur(image * target) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    return (((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))).mean(dim=1)[0]


def search_symbols(stage, x, prev, scale, symbols, rate, lam, picture, rounds, ms_ssim_share=0.0):
    """`symbol_search.search_symbols` with measured block moves for any mix of squared error and MS-SSIM."""
    height, width = picture
    pixels = height * width
    if min(height, width) < MS_SSIM_MIN_SIDE:
        ms_ssim_share = 0.0
    target = x[..., :height, :width]

    def reconstruct(q):
        return stage.synthesise(q, prev, scale)[..., :height, :width]

    def similarity_term(recon):
        return float(lam * ms_ssim_share * MS_SSIM_LAMBDA_SCALE * (1 - ms_ssim(recon.clamp(0, 1), target, data_range=1.0)))

    def objective(q):
        leaf = q.detach().requires_grad_(True)
        with torch.enable_grad():
            recon = reconstruct(leaf)
            value = torch.zeros((), dtype=recon.dtype)
            if ms_ssim_share < 1:
                value = value + (1 - ms_ssim_share) * ((recon - target) ** 2).mean()
            if ms_ssim_share:
                value = value + ms_ssim_share * MS_SSIM_LAMBDA_SCALE * (1 - ms_ssim(recon.clamp(0, 1), target, data_range=1.0))
            value = lam * value
        return rate.bits(q) / pixels + float(value.detach()), (value, leaf, recon.detach())

    step = stage.config.step * scale
    norms = (stage.transform.synthesis.weight.detach() ** 2).sum(dim=(1, 2, 3)).view(1, -1, 1, 1)
    curvature = lam * step * step * norms / (3 * pixels)
    squared_weight = lam * (1 - ms_ssim_share) / target.numel()
    best = symbols
    current, (value, leaf, recon) = objective(best)
    for _ in range(rounds):
        (gradient,) = torch.autograd.grad(value, leaf)
        gain, move, move_rate = symbol_search._best_moves(gradient, curvature, rate.move_bits(best) / pixels)
        before_squared = (recon - target) ** 2
        if ms_ssim_share:
            with torch.no_grad():
                before_term, before_map = similarity_term(recon), ssim_map(recon.clamp(0, 1), target)

        @torch.no_grad()
        def change(q, before_squared=before_squared):
            after = reconstruct(q)
            per_pixel = (squared_weight * ((after - target) ** 2 - before_squared)).sum(dim=(0, 1))
            if ms_ssim_share:
                shape = before_map - ssim_map(after.clamp(0, 1), target)  # the rise of 1 - SSIM
                exact, total = similarity_term(after) - before_term, float(shape.sum())
                per_pixel = per_pixel + shape * (exact / total if exact * total > 0 else 0.0)
            return per_pixel

        improved = symbol_search._apply_measured_block_moves(best, gain, move, move_rate, current, objective, change, stage.config.block)
        if improved is None:
            break
        best, current, (value, leaf, recon) = improved
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model id or weights file (default: the default model)")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--levels", default="0,2,4")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = get_model(args.model)
    images = sorted(KODAK.glob("*.png"))[:: 24 // args.images][: args.images]
    if not images:
        raise SystemExit(f"no Kodak images in {KODAK}")
    shipped = symbol_search.search_symbols
    arms = {"shipped": shipped, "blocks": search_symbols}
    points = {name: {} for name in arms}
    seconds = {name: 0.0 for name in arms}
    for path in images:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        for level in [int(v) for v in args.levels.split(",")]:
            for name, search in arms.items():
                symbol_search.search_symbols = search  # the pipeline looks it up at every encode
                start = time.perf_counter()
                data = encode(rgb, quality=level, model=loaded, search_rounds=args.rounds)
                seconds[name] += time.perf_counter() - start
                for k in range(1, unpack(data).stages_present + 1):
                    prefix = truncate(data, k)
                    m = metrics.measure(rgb, decode(prefix, model=loaded), len(prefix))
                    points[name].setdefault((level, k), []).append((m["bpp"], m["psnr"], m["ms_ssim"]))
        print(path.name, "done", flush=True)
    symbol_search.search_symbols = shipped
    encodes = len(images) * len(args.levels.split(","))
    print(f"mean encode seconds: shipped {seconds['shipped'] / encodes:.1f}, blocks {seconds['blocks'] / encodes:.1f}")
    print_paired(points["shipped"], points["blocks"], ("shipped", "blocks"), "level stages")


if __name__ == "__main__":
    main()
