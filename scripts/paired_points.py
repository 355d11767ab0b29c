"""What the paired probes share: the same operating points measured two ways, side by side.

`postfilter_gain.py` (with and without post-filters, or two models),
`inloop_filter_probe.py` (format 9 and an in-loop filter),
`symbol_search_probe.py` (rounding and the search) and `search_lambda_probe.py`
(the search at two λ) each collect, per arm, {(level, stages): [(bpp, PSNR,
MS-SSIM) per image]}; `add_prefix_points` measures a file's stage prefixes
into such an arm, and `print_paired` prints the mean of every point in both
arms and the BD-rate of the second arm against the first (PCHIP on upper
envelopes, MS-SSIM in dB).
"""

from __future__ import annotations

import numpy as np

from cdcodec.bench import metrics
from cdcodec.bench.bdrate import bd_rate
from cdcodec.bench.jsonfile import read_json
from cdcodec.bench.metrics import to_db
from cdcodec.bitstream import truncate, unpack
from cdcodec.codec.pipeline import decode


def add_prefix_points(arm: dict, level: int, image: np.ndarray, data: bytes, model) -> None:
    """Decode every stage prefix of the .cdc bytes `data` (encoded from `image` at quality
    `level`) and add its (bpp, PSNR, MS-SSIM), the rate from the prefix's own bytes,
    to arm[(level, stages)]."""
    for stages in range(1, unpack(data).stages_present + 1):
        prefix = truncate(data, stages)
        m = metrics.measure(image, decode(prefix, model=model), len(prefix))
        arm.setdefault((level, stages), []).append((m["bpp"], m["psnr"], m["ms_ssim"]))


def print_paired(first: dict, second: dict, names: tuple[str, str], key_names: str) -> None:
    keys = sorted(first)
    a, b = (np.array([np.mean(arm[key], axis=0) for key in keys]) for arm in (first, second))
    print(f"\n{key_names} | {names[0]}: bpp PSNR MS-SSIM | {names[1]}: bpp PSNR MS-SSIM")
    for key, old, new in zip(keys, a, b):
        print(f"{key[0]} {key[1]} | {old[0]:.4f} {old[1]:.3f} {old[2]:.5f} | {new[0]:.4f} {new[1]:.3f} {new[2]:.5f}")
    db = lambda m: np.array([to_db(v) for v in m])  # noqa: E731
    print(f"\nBD-rate {names[1]} against {names[0]}: PSNR {bd_rate(a[:, 0], a[:, 1], b[:, 0], b[:, 1]):+.2f}%  "
          f"MS-SSIM (dB) {bd_rate(a[:, 0], db(a[:, 2]), b[:, 0], db(b[:, 2])):+.2f}%")


def print_compared_runs(paths, describe) -> None:
    """Print two probe runs' files side by side (each a JSON object with "seconds per encode" and
    "points" keyed "level stages"), each headed by `describe(run)`, then their BD-rate."""
    runs = [read_json(path) for path in paths]
    for path, run in zip(paths, runs):
        print(f"{path.name}: {describe(run)}, {run['seconds per encode']:.1f} s per encode")
    arms = [{tuple(int(v) for v in key.split()): points for key, points in run["points"].items()} for run in runs]
    print_paired(arms[0], arms[1], tuple(path.name for path in paths), "level stages")
