"""BD-rates of every lossy codec in a bench results file against another reference, without re-measuring.

`cdcodec bench` reports BD-rates against one reference (WebP). This recomputes
them from the file's measurements with the bench's own `summarise`, e.g. the
MS-SSIM model against the MSE model:

    python results/bench/rereference.py results/bench/kodak.json --reference cdcodec
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cdcodec.bench.report import summarise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--reference", required=True, help="codec name, e.g. cdcodec")
    args = parser.parse_args()
    doc = json.loads(args.results.read_text())
    method = doc["options"].get("bd_method", "pchip")
    bd = summarise(doc["measurements"], doc["codecs"], args.reference, method)["bd_rate_percent"]
    print(f"BD-rate (%) against {args.reference} ({method}; SSIM and MS-SSIM in dB)")
    print("| codec | PSNR | SSIM | MS-SSIM |\n|---|---|---|---|")
    for name, row in bd.items():
        cells = ["–" if row[k] is None else f"{row[k]:+.1f}" for k in ("psnr", "ssim", "ms_ssim")]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
