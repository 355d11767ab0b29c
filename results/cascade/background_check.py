"""Where a cascade's later stages lose SSIM on MNIST: the black background.

Loads the cached models of `cdcodec experiment cascade` (seed 0) and reports,
per stage, how many of the test pixels that are 0 in the original come out
nonzero, and their mean level. Needs the run's cache (~/.cache/cdcodec/...).

Usage (from the repository root):
    python results/cascade/background_check.py --dataset mnist --epochs 20 --algorithms RCDAE,GCDAE
"""

from __future__ import annotations

import argparse

import torch

from cdcodec.experiments.cascade import evaluate
from cdcodec.experiments.cascade.algorithms import BY_NAME
from cdcodec.experiments.cascade.cache import DEFAULT_CACHE_DIR, RunCache
from cdcodec.experiments.cascade.config import TrainConfig
from cdcodec.experiments.cascade.data import load_dataset
from cdcodec.experiments.cascade.runner import load_cached


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--algorithms", default="RCDAE,GCDAE")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    splits = load_dataset(args.dataset, args.data_dir)
    cfg = TrainConfig()
    cache = RunCache.for_run(DEFAULT_CACHE_DIR, splits, cfg.key(), args.epochs)
    originals = evaluate.to_pixels(splits.test)
    background = originals == 0
    print(f"{args.dataset}: {background.mean():.3f} of the test pixels are 0 (black)")
    for name in args.algorithms.split(","):
        model = load_cached(BY_NAME[name], cfg, cache, args.seed)
        if model is None:
            raise SystemExit(f"{name} seed {args.seed} is not in the cache {cache.dir}; run the experiment first")
        with torch.no_grad():
            stages = model(torch.from_numpy(splits.test))
        for k, out in enumerate(stages, start=1):
            pixels = evaluate.to_pixels(out.numpy())[background]
            print(f"{name} stage {k}: {(pixels != 0).mean():.3f} of the black pixels decoded nonzero, mean level {pixels.mean():.2f}")


if __name__ == "__main__":
    main()
