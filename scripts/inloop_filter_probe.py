"""Does the post-filter pay more in the loop? (the probe that led to format 10)

Format 9 filtered only the image shown: the decoder applied the last decoded
stage's post-filter, and every later stage refined the unfiltered image before
it. `cdc-mix-5` (results/codec-study/quality-refine.md) gained most of its 1%
in the rate of stages 2 and 3, because they refine a better image; an in-loop
filter (stage k's filter applied to the image stage k + 1 refines, as video
codecs do with their loop filters) hands every level that better image.
Format 10 does that (`pipeline._InLoopFilter`).

This runs the encoder's own steps by hand on Kodak images, twice: as format 9
did, and with each stage's chosen filter applied (unrounded, on the picture;
the padding as decoded) to the image the next stage analyses and refines. Each
stage's filter is chosen as the encoder chooses it (`pipeline._choose_filter`),
bytes are the real latent sections (filter block included) of every stage,
and the quality is that of the image shown after k stages; so the first stage
is the same in both and only later stages differ. No file is written: the
container adds the same header to both. For every image and level the bytes
of the arm the current format uses (in the loop since format 10; session 23
ran this with format 9 and checked that arm) are checked against a real
`cdcodec.encode` of the same image (its stages' payload sizes), so the
hand-run steps are the encoder's.

    python scripts/inloop_filter_probe.py --images 4 --levels 0,2,4 --threads 1

`--images n` takes every 24/n-th Kodak image (4: kodim01, 07, 13, 19).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image

import cdcodec
from cdcodec.bench import metrics
from cdcodec.bitstream import encode_latent, unpack
from cdcodec.bitstream.filters import join_latent_section
from cdcodec.codec.model import stage_prior, symbols_to_array
from cdcodec.codec.pipeline import _choose_filter, _InLoopFilter, _to_tensor, get_model
from kodak_sample import kodak_sample
from paired_points import print_paired

#: Which arm `cdcodec.encode` runs: format 10 filters in the loop.
CURRENT_FORMAT_IN_LOOP = True


def run(codec, rgb: np.ndarray, quality: int, in_loop: bool) -> list[tuple[int, float, float]]:
    """(cumulative bytes, PSNR, MS-SSIM) of the image shown after each stage.

    Both arms choose and apply each stage's filter as the encoder does
    (`pipeline._InLoopFilter`); only the in-loop arm hands the filtered image on.
    """
    height, width = rgb.shape[:2]
    loop = _InLoopFilter(height, width, lambda index, inputs: _choose_filter(codec, index, quality, inputs, rgb))
    shown = []

    def after_stage(index, images):
        following = loop(index, images)
        shown.append(loop.shown)
        return following if in_loop else images.reconstruction

    symbols = codec.analyse(_to_tensor(rgb, codec.config.multiple), codec.num_stages, quality, loop_filter=after_stage)
    total, out = 0, []
    for index, q in enumerate(symbols):
        grid = tuple(q.shape[-2:])
        prior = stage_prior(symbols[index - 1] if index else None, grid, q.shape[1])
        latent = encode_latent(symbols_to_array(q), codec.tables_for(index, quality), prior, grid)
        total += len(join_latent_section(loop.filters[index], latent))
        pixels = np.clip(np.round(shown[index]), 0, 255).astype(np.uint8)
        out.append((total, metrics.psnr(rgb, pixels), metrics.ms_ssim(rgb, pixels)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model id or weights file (default: the default model)")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--levels", default="0,2,4")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    codec = get_model(args.model).codec
    levels = [int(v) for v in args.levels.split(",")]
    images = kodak_sample(args.images)
    points = {False: {}, True: {}}  # in_loop -> (level, stages) -> [(bpp, PSNR, MS-SSIM)]
    for path in images:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        pixels = rgb.shape[0] * rgb.shape[1]
        for level in levels:
            for in_loop in (False, True):
                stages = run(codec, rgb, level, in_loop)
                if in_loop == CURRENT_FORMAT_IN_LOOP:
                    real = np.cumsum([len(p) for p in unpack(cdcodec.encode(rgb, quality=level, model=args.model)).payloads])
                    if [size for size, _, _ in stages] != real.tolist():
                        raise SystemExit(f"{path.name} level {level}: hand-run bytes {stages} differ from the encoder's {real}")
                for k, (size, psnr, msssim) in enumerate(stages, start=1):
                    points[in_loop].setdefault((level, k), []).append((8 * size / pixels, psnr, msssim))
        print(path.name, "done", flush=True)
    print_paired(points[False], points[True], ("format 9", "in loop"), "level stages")

if __name__ == "__main__":
    main()
