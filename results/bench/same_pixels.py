"""Whether a change kept every point's pixels: two bench results files, point by point.

For a coder change that should only change bytes (tempered tables, session 61),
every (image, setting) of a codec must keep its PSNR, SSIM, MS-SSIM and maximum
error exactly; this counts the points that do and gives the range of the byte
ratio new / old and how many points grew:

    python results/bench/same_pixels.py results/bench/kodak.json NEW.json cdcodec cdcodec-psnr
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cdcodec.bench.jsonfile import read_json

METRICS = ("psnr", "ssim", "ms_ssim", "max_abs_error")


def points(path: Path, codec: str) -> dict:
    return {(m["image"], m["setting"]): m for m in read_json(path)["measurements"] if m["codec"] == codec}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("codecs", nargs="+")
    args = parser.parse_args()
    for codec in args.codecs:
        old, new = points(args.old, codec), points(args.new, codec)
        common = sorted(old.keys() & new.keys())
        if not common:
            print(f"{codec}: no common points")
            continue
        same = sum(all(old[k][m] == new[k][m] for m in METRICS) for k in common)
        ratios = [new[k]["bytes"] / old[k]["bytes"] for k in common]
        print(f"{codec}: {len(common)} common points, {same} with identical metrics; "
              f"bytes new/old {min(ratios):.4f}-{max(ratios):.4f}, {sum(r > 1 for r in ratios)} grew")


if __name__ == "__main__":
    main()
