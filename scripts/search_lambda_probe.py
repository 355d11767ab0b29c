"""Is the symbol search's λ the right one? The search run at F × λ, measured against F = 1.

The encoder's search (`codec/symbol_search.py`) trades bits against distortion
at each stage's training λ (`networks.lambda_for_step`, scaled by 1/37 for the
MS-SSIM term). Nothing guarantees that this is the slope of the curve the
bench measures, so this probe moves it: one run encodes the 4-image Kodak
sample (`kodak_sample.py`) at quality levels 0, 2 and 4 with the search's λ
multiplied by F (post-filters and their λ unchanged), decodes every stage
prefix and writes the points (real bytes) to a JSON file; `--compare` prints
two such files side by side with the BD-rate of the second against the first
(both from `paired_points.py`). Each run takes one core; run several at once pinned to
different cores:

    OMP_NUM_THREADS=1 taskset -c 0 python scripts/search_lambda_probe.py --factor 1 --tune psnr --out /tmp/psnr-1.0.json
    OMP_NUM_THREADS=1 taskset -c 1 python scripts/search_lambda_probe.py --factor 0.7 --tune psnr --out /tmp/psnr-0.7.json
    python scripts/search_lambda_probe.py --compare /tmp/psnr-1.0.json /tmp/psnr-0.7.json

The λ reaches the search by wrapping `symbol_search.search_symbols`: a
measurement knob, not an encoder option.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cdcodec.codec import symbol_search
from cdcodec.codec.pipeline import TUNINGS, encode, get_model

from kodak_sample import kodak_sample
from paired_points import add_prefix_points, print_compared_runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factor", type=float, help="multiply the search's λ by this")
    parser.add_argument("--out", type=Path, help="JSON file for this run's points")
    parser.add_argument("--model", default=None, help="model id or weights file (default: the default model)")
    parser.add_argument("--tune", choices=TUNINGS, default="model", help="as `cdcodec encode --tune`")
    parser.add_argument("--levels", default="0,2,4")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BASE", "OTHER"), help="print two runs' points and BD-rates")
    args = parser.parse_args()
    if args.compare:
        print_compared_runs(args.compare, lambda run: f"factor {run['factor']}, tune {run['tune']}, model {run['model']}")
        return
    if args.factor is None or args.out is None:
        parser.error("give --factor and --out (or --compare)")
    torch.set_num_threads(1)
    search = symbol_search.search_symbols

    def scaled(stage, x, prev, scale, symbols, rate, lam, *rest, **options):
        return search(stage, x, prev, scale, symbols, rate, lam * args.factor, *rest, **options)

    symbol_search.search_symbols = scaled
    loaded = get_model(args.model)
    levels = [int(v) for v in args.levels.split(",")]
    points, seconds, encodes = {}, 0.0, 0
    for path in kodak_sample(4):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        for level in levels:
            start = time.perf_counter()
            data = encode(rgb, quality=level, model=loaded, search_rounds=args.rounds, tune=args.tune)
            seconds, encodes = seconds + time.perf_counter() - start, encodes + 1
            add_prefix_points(points, level, rgb, data, loaded)
        print(path.name, "done", flush=True)
    record = {"factor": args.factor, "tune": args.tune, "model": args.model or "default", "rounds": args.rounds,
              "seconds per encode": seconds / encodes, "points": {f"{level} {stages}": p for (level, stages), p in points.items()}}
    args.out.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
