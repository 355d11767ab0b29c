"""Two codecs of a bench results file, operating point by operating point.

BD-rates summarise a whole curve in one number; this shows where a change
moved it: for every setting the two codecs share (for cdcodec models, each
quality level × stage count), the mean rate and quality over the images of
both, and the differences. For two models measured on the same images, e.g.
a candidate added by `scripts/model_vs_bench.py` beside the shipped default:

    python results/bench/compare_points.py /tmp/candidate.json cdcodec candidate

`--second-results FILE` reads the second codec from another results file
(two candidates each added to its own copy of the bench by `model_vs_bench.py`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cdcodec.bench.curves import average_curve
from cdcodec.bench.jsonfile import read_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("first", help="codec name, e.g. cdcodec")
    parser.add_argument("second", help="codec name")
    parser.add_argument("--second-results", type=Path, default=None, help="results file of the second codec (default: the same)")
    args = parser.parse_args()

    def points(path: Path, name: str) -> dict:
        return {p["setting"]: p for p in average_curve(read_json(path)["measurements"], name)}

    first, second = points(args.results, args.first), points(args.second_results or args.results, args.second)
    shared = [s for s in first if s in second]
    if not shared:
        raise SystemExit(f"{args.first} and {args.second} share no setting in {args.results}")
    print(f"| setting | {args.first}: bpp / PSNR / MS-SSIM | {args.second}: bpp / PSNR / MS-SSIM | rate | PSNR | MS-SSIM |")
    print("|---|---|---|---:|---:|---:|")
    for setting in sorted(shared):
        a, b = first[setting], second[setting]
        print(
            f"| {setting} | {a['bpp']:.4f} / {a['psnr']:.3f} / {a['ms_ssim']:.5f} | {b['bpp']:.4f} / {b['psnr']:.3f} / {b['ms_ssim']:.5f} "
            f"| {100 * (b['bpp'] / a['bpp'] - 1):+.2f}% | {b['psnr'] - a['psnr']:+.3f} dB | {b['ms_ssim'] - a['ms_ssim']:+.5f} |"
        )


if __name__ == "__main__":
    main()
