"""Does the cascades' ΔSSIM against AE depend on how SSIM is computed?

The paper never states its SSIM settings. This loads the finished models of
`cdcodec experiment cascade` from its cache (every seed present) and scores
the last stage of each algorithm, and AE, under several plausible settings:

- ``ours``: what the experiment reports (8-bit pixels, scikit-image defaults:
  7x7 uniform window, sample covariance, data_range 255);
- ``gauss``: the SSIM paper's own setting (11x11 Gaussian window, sigma 1.5,
  population covariance), on the same 8-bit pixels (as tf.image.ssim does);
- ``float01``: unrounded reconstructions in [0, 1], data_range 1 (rounding only);
- ``float01-r2``: the same with data_range 2, which older scikit-image
  (``compare_ssim``) assumed for any float image, so larger C1, C2;
- ``tanh``: the networks' raw outputs against the inputs, both in [-1, 1],
  data_range 2 (SSIM is not shift invariant, so this differs from float01).

Usage (from the repository root; needs the run's cache):
    python results/cascade/ssim_settings.py --dataset mnist --epochs 20
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from skimage.metrics import structural_similarity

from cdcodec.experiments.cascade import evaluate
from cdcodec.experiments.cascade.algorithms import GROUPS
from cdcodec.experiments.cascade.cache import DEFAULT_CACHE_DIR, RunCache
from cdcodec.experiments.cascade.config import TrainConfig
from cdcodec.experiments.cascade.data import load_dataset
from cdcodec.experiments.cascade.paper_values import PAPER_SSIM
from cdcodec.experiments.cascade.runner import load_cached


@dataclass(frozen=True)
class Setting:
    name: str
    prepare: Callable[[np.ndarray], np.ndarray]  # (N, 784) in [-1, 1] -> (N, 28, 28) images
    options: dict


def _float01(images: np.ndarray) -> np.ndarray:
    return np.clip((images.astype(np.float64) + 1.0) / 2.0, 0.0, 1.0).reshape(-1, 28, 28)


def _tanh(images: np.ndarray) -> np.ndarray:
    return np.clip(images.astype(np.float64), -1.0, 1.0).reshape(-1, 28, 28)


_GAUSS = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
SETTINGS = (
    Setting("ours", evaluate.to_pixels, {"data_range": 255}),
    Setting("gauss", evaluate.to_pixels, {"data_range": 255, **_GAUSS}),
    Setting("float01", _float01, {"data_range": 1.0}),
    Setting("float01-r2", _float01, {"data_range": 2.0}),
    Setting("tanh", _tanh, {"data_range": 2.0}),
)


def mean_ssim(setting: Setting, originals: np.ndarray, reconstructions: np.ndarray) -> float:
    a, b = setting.prepare(originals), setting.prepare(reconstructions)
    return float(np.mean([structural_similarity(x, y, **setting.options) for x, y in zip(a, b)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1; missing ones are skipped")
    args = parser.parse_args()
    torch.set_num_threads(1)
    splits = load_dataset(args.dataset, args.data_dir)
    cfg = TrainConfig()
    cache = RunCache.for_run(DEFAULT_CACHE_DIR, splits, cfg.key(), args.epochs)
    test = torch.from_numpy(splits.test)
    scores: dict[str, dict[str, list[float]]] = {}  # algorithm -> setting -> per seed
    used_seeds = []
    for seed in range(args.seeds):
        models = {alg.name: load_cached(alg, cfg, cache, seed) for alg in GROUPS["paper"]}
        if any(m is None for m in models.values()):
            print(f"seed {seed}: not every algorithm is in the cache {cache.dir}; skipped")
            continue
        used_seeds.append(seed)
        for name, model in models.items():
            with torch.no_grad():
                last = model(test)[-1].numpy()
            for setting in SETTINGS:
                scores.setdefault(name, {}).setdefault(setting.name, []).append(mean_ssim(setting, splits.test, last))
    if not used_seeds:
        raise SystemExit("no seed has every algorithm cached; run the experiment first")
    paper = PAPER_SSIM.get(args.dataset, {})
    print(f"{args.dataset}, {args.epochs} epochs, seeds {used_seeds}: last-stage SSIM under each setting (mean over seeds)")
    print("ΔSSIM against AE, paired by seed (mean ± std over seeds); AE row: its absolute SSIM; paper column: the paper's value")
    header = f"| algorithm | {' | '.join(s.name for s in SETTINGS)} | paper |"
    print(header)
    print("|---" * (len(SETTINGS) + 2) + "|")
    ae = {s.name: np.array(scores["AE"][s.name]) for s in SETTINGS}
    for name, per_setting in scores.items():
        cells = []
        for s in SETTINGS:
            values = np.array(per_setting[s.name])
            delta = values - ae[s.name]
            spread = f" ± {delta.std(ddof=1):.5f}" if len(delta) > 1 else ""  # no spread from one seed
            cells.append(f"{values.mean():.5f}" if name == "AE" else f"{delta.mean():+.5f}{spread}")
        ref = paper.get(name)
        ref_cell = "" if ref is None else (f"{ref:.5f}" if name == "AE" else f"{ref - paper['AE']:+.5f}")
        print(f"| {name} | {' | '.join(cells)} | {ref_cell} |")


if __name__ == "__main__":
    main()
