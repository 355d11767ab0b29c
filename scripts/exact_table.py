"""Lossless and near-lossless rates of cdcodec beside standard codecs, measured in one run.

For every image: cdcodec --lossless and --max-error 1, 2 (on three bases: one
lossy stage at the coarsest quality level, the smallest exact files; one lossy
stage at the default level; every lossy stage, the default), checked pixel by pixel (exact, or within
D); PNG, WebP lossless, JPEG XL lossless (effort 5, imagecodecs' default, and
effort 7, libjxl's own default, as cjxl uses it) and JPEG-LS
lossless and near-lossless (NEAR = 1, 2), each decoded and checked the same way.
Rates are bits per sub-pixel from the real encoded bytes. Also times cdcodec's
lossless encode and decode of each image in-process (one thread count as given).

Usage:
    python scripts/exact_table.py --images ../shared/data/kodak --out results/exact/kodak.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import imagecodecs
import numpy as np
import torch
from PIL import Image

import cdcodec
from cdcodec.codec.pipeline import get_model


def baselines(image: np.ndarray) -> dict[str, tuple[bytes, np.ndarray, int]]:
    """name -> (encoded bytes, decoded pixels, promised maximum error)."""
    out = {}
    out["PNG"] = (png := imagecodecs.png_encode(image, level=9), imagecodecs.png_decode(png), 0)
    out["WebP lossless"] = (w := imagecodecs.webp_encode(image, lossless=True), imagecodecs.webp_decode(w), 0)
    for effort in (5, 7):
        data = imagecodecs.jpegxl_encode(image, lossless=True, effort=effort, numthreads=1)
        out[f"JPEG XL lossless e{effort}"] = (data, imagecodecs.jpegxl_decode(data), 0)
    for near in (0, 1, 2):
        data = imagecodecs.jpegls_encode(image, level=near)
        out[f"JPEG-LS NEAR={near}"] = (data, imagecodecs.jpegls_decode(data), near)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = get_model(None)
    full = model.codec.num_stages
    files = sorted(p for p in args.images.iterdir() if p.suffix.lower() in {".png", ".ppm", ".bmp", ".tif", ".tiff"})
    rows = []
    for path in files:
        image = np.asarray(Image.open(path).convert("RGB"))
        subpixels = image.size
        row = {"image": path.name}
        for base, quality in ((1, 0), (1, None), (full, None)):
            for label, options in (("lossless", {"lossless": True}), ("D=1", {"max_error": 1}), ("D=2", {"max_error": 2})):
                start = time.perf_counter()
                data = cdcodec.encode(image, stages=base, model=model, quality=quality, **options)
                encode_s = time.perf_counter() - start
                start = time.perf_counter()
                decoded = cdcodec.decode(data, model=model)
                decode_s = time.perf_counter() - start
                bound = options.get("max_error", 0)
                error = int(np.abs(decoded.astype(int) - image.astype(int)).max())
                if error > bound:
                    raise SystemExit(f"{path.name}: cdcodec {label} exceeded its bound ({error} > {bound})")
                level = "" if quality is None else f", quality {quality}"
                row[f"cdcodec {label} (base {base}{level})"] = {
                    "bpsp": 8 * len(data) / subpixels, "max_error": error, "encode_s": encode_s, "decode_s": decode_s,
                }
        for name, (data, decoded, bound) in baselines(image).items():
            error = int(np.abs(np.asarray(decoded).astype(int).reshape(image.shape) - image.astype(int)).max())
            if error > bound:
                raise SystemExit(f"{path.name}: {name} exceeded its bound ({error} > {bound})")
            row[name] = {"bpsp": 8 * len(data) / subpixels, "max_error": error}
        rows.append(row)
        print(path.name, {k: round(v["bpsp"], 3) for k, v in row.items() if k != "image"}, flush=True)
    names = [k for k in rows[0] if k != "image"]
    summary = {name: float(np.mean([r[name]["bpsp"] for r in rows])) for name in names}
    timing = {
        name: {"encode_s": float(np.mean([r[name]["encode_s"] for r in rows])), "decode_s": float(np.mean([r[name]["decode_s"] for r in rows]))}
        for name in names
        if name.startswith("cdcodec")
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "command": " ".join(["python", *sys.argv]),
        "threads": args.threads,
        "images": len(rows),
        "mean_bpsp": summary,
        "mean_seconds": timing,
        "per_image": rows,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"mean_bpsp": summary, "mean_seconds": timing}, indent=2))


if __name__ == "__main__":
    main()
