"""Does the encoder's symbol search pay, and how much per round? (`codec/symbol_search.py`)

Encodes Kodak images at each chosen quality level twice, with plain rounding
(`search_rounds=0`) and with the search (`--rounds R`), post-filters on as the
encoder's default, decodes every stage prefix, and prints both arms' mean
points and the BD-rate of the search against rounding (PCHIP on upper
envelopes, MS-SSIM in dB). Rates are real file bytes.

    python scripts/symbol_search_probe.py --images 4 --levels 0,2,4 --rounds 4 --threads 2

`--images n` takes every 24/n-th Kodak image (4: kodim01, 07, 13, 19).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

from cdcodec.codec.pipeline import encode, get_model

from kodak_sample import kodak_sample
from paired_points import add_prefix_points, print_paired


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model id or weights file (default: the default model)")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--levels", default="0,2,4")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--ms-ssim-share", type=float, default=None,
                        help="the search's share of 1 - MS-SSIM in its distortion (default: the model's training share)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = get_model(args.model)
    levels = [int(v) for v in args.levels.split(",")]
    images = kodak_sample(args.images)
    points = {0: {}, args.rounds: {}}  # rounds -> (level, stages) -> [(bpp, PSNR, MS-SSIM)]
    seconds = {0: 0.0, args.rounds: 0.0}
    for path in images:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        for level in levels:
            for rounds in points:
                start = time.perf_counter()
                data = encode(rgb, quality=level, model=loaded, search_rounds=rounds, search_ms_ssim_share=args.ms_ssim_share)
                seconds[rounds] += time.perf_counter() - start
                add_prefix_points(points[rounds], level, rgb, data, loaded)
        print(path.name, "done", flush=True)
    encodes = len(images) * len(levels)
    print(f"mean encode seconds: rounding {seconds[0] / encodes:.1f}, search {seconds[args.rounds] / encodes:.1f}")
    print_paired(points[0], points[args.rounds], ("rounded", f"{args.rounds} rounds"), "level stages")


if __name__ == "__main__":
    main()
