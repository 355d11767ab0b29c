"""Independent check of the benchmark's JPEG and WebP figures with plain Pillow and numpy.

Deliberately imports nothing from cdcodec: it re-encodes every image of a results
JSON at the recorded quality settings with Pillow's own save/open and its own
PSNR, and reports the largest disagreement with the JSON. The issue's criterion is
agreement within 0.1 dB at matched settings.

    python results/bench/crosscheck.py results/bench/kodak.json ../shared/data/kodak
"""

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from cdcodec.bench.jsonfile import read_json

# The Pillow calls a user would write for these settings.
PLAIN = {
    "jpeg420": lambda q: {"format": "JPEG", "quality": q, "subsampling": 2, "optimize": True},
    "jpeg444": lambda q: {"format": "JPEG", "quality": q, "subsampling": 0, "optimize": True},
    "webp": lambda q: {"format": "WEBP", "quality": q, "method": 6},
}


def plain_point(pixels, options):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, **options)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")).astype(np.float64)
    mse = np.mean((decoded - pixels) ** 2)
    return len(buffer.getvalue()), 10 * np.log10(255.0**2 / mse)


def main(results_path, images_dir):
    doc = read_json(results_path)
    worst = {name: [0.0, 0, 0] for name in PLAIN}  # max |dPSNR| dB, byte mismatches, points
    for image in doc["images"]:
        path = next(p for p in Path(images_dir).iterdir() if p.stem == image["name"])
        pixels = np.asarray(Image.open(path).convert("RGB"))
        for record in doc["measurements"]:
            if record["image"] != image["name"] or record["codec"] not in PLAIN:
                continue
            size, psnr = plain_point(pixels, PLAIN[record["codec"]](int(record["setting"])))
            entry = worst[record["codec"]]
            entry[0] = max(entry[0], abs(psnr - record["psnr"]))
            entry[1] += size != record["bytes"]
            entry[2] += 1
    print("| codec | points | max abs PSNR difference (dB) | byte-count mismatches |")
    print("|---|---|---|---|")
    for name, (diff, mismatches, points) in worst.items():
        print(f"| {name} | {points} | {diff:.4f} | {mismatches} |")
    return 0 if all(diff < 0.1 for diff, _, _ in worst.values()) else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
