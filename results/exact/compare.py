"""The README's comparisons of cdcodec's exact modes, read from `kodak.json` (`scripts/exact_table.py`).

The means alone do not say on how many images cdcodec is smaller, or how far
the three-stage exact files sit above the one-stage ones; this prints both, so
that every such figure in `results/exact/README.md` comes from a command:

    python results/exact/compare.py results/exact/kodak.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cdcodec.bench.jsonfile import read_json

SMALLEST = "cdcodec {} (base 1, quality 0)"
THREE_STAGES = "cdcodec {} (base 3)"
PAIRS = [("lossless", "WebP lossless"), ("lossless", "JPEG XL lossless e5"), ("lossless", "JPEG XL lossless e7"),
         ("D=1", "JPEG-LS NEAR=1"), ("D=2", "JPEG-LS NEAR=2")]


def ratios(rows: list[dict], ours: str, theirs: str) -> list[tuple[str, float]]:
    """(image, ours / theirs − 1) for every image, in bits per sub-pixel."""
    return [(row["image"], row[ours]["bpsp"] / row[theirs]["bpsp"] - 1) for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    doc = read_json(parser.parse_args().results)
    means, rows = doc["mean_bpsp"], doc["per_image"]
    for mode, baseline in PAIRS:
        ours = SMALLEST.format(mode)
        per_image = ratios(rows, ours, baseline)
        smaller = sum(r < 0 for _, r in per_image)
        low, high = min(per_image, key=lambda t: t[1]), max(per_image, key=lambda t: t[1])
        print(f"{ours} vs {baseline}: mean {means[ours] / means[baseline] - 1:+.2%}, smaller on {smaller} of "
              f"{len(per_image)}, from {low[1]:+.1%} ({low[0]}) to {high[1]:+.1%} ({high[0]})")
    for mode in ("lossless", "D=1", "D=2"):
        three, one = THREE_STAGES.format(mode), SMALLEST.format(mode)
        per_image = [r for _, r in ratios(rows, three, one)]
        mean = means[three] / means[one] - 1
        print(f"three stages over one at quality 0, {mode}: mean {mean:+.1%}, "
              f"per image {min(per_image):+.1%} to {max(per_image):+.1%}")


if __name__ == "__main__":
    main()
