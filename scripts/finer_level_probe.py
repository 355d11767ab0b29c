"""A model's finest quality level beside the one before it, and with its refine CNNs'
quality input clamped to the trained range (results/codec-study/finer-level.md).

`cdcodec add-quality` gives a model a level finer than any it was trained at;
refine CNNs that see the quality level (StageConfig.refine_sees_quality) then
see log2 of the new step factor, outside the range they learned (±1 for the
shipped models). This encodes each image at the model's two finest levels as
shipped, and at the finest once more with that input clamped to the trained
range's end (a decoder change, applied to the encoder's search too), and prints
rate, PSNR and MS-SSIM of every stage prefix: does the new level give points
where a user expects them, and would clamping have served better?

    python scripts/finer_level_probe.py cdc-mix-19 --out finer-level.json
    python scripts/finer_level_probe.py cdc-mix-19 --images ../shared/data/train-photos --max-images 4
    python scripts/finer_level_probe.py --read results/codec-study/finer-level.json

Last it prints what clamping saves: per image and stage count, the bits at equal
PSNR (and MS-SSIM) read off the line through the two shipped levels' points in
log rate; `--read` prints that from a saved run without encoding.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from pytorch_msssim import ms_ssim
from skimage.metrics import peak_signal_noise_ratio

from cdcodec.bench.images import bundled_images, folder_images
from cdcodec.bitstream import truncate
from cdcodec.codec.pipeline import decode, encode, get_model
from cdcodec.codec.stage import ResidualStage

#: The step factors the shipped models' refine CNNs were trained over (log2: −1 to 1).
TRAINED_LOG2_RANGE = (-1.0, 1.0)


@contextmanager
def clamped_quality_input():
    """ResidualStage.correction with the step factor clamped to TRAINED_LOG2_RANGE."""
    shipped = ResidualStage.correction
    low, high = (2.0**v for v in TRAINED_LOG2_RANGE)

    def correction(self, estimate, prev, scale=1.0):
        return shipped(self, estimate, prev, torch.clamp(torch.as_tensor(scale, dtype=prev.dtype), low, high))

    ResidualStage.correction = correction
    try:
        yield
    finally:
        ResidualStage.correction = shipped


def msssim(a: np.ndarray, b: np.ndarray) -> float:
    as_tensor = lambda x: torch.from_numpy(x).permute(2, 0, 1)[None].double()
    return float(ms_ssim(as_tensor(a), as_tensor(b), data_range=255))


def points(pixels: np.ndarray, model: str, quality: int) -> tuple[list[dict], float]:
    """Every stage prefix of one encode (rate from the file's bytes), and the encode's seconds."""
    started = time.process_time()
    data = encode(pixels, model=model, quality=quality)
    seconds = time.process_time() - started
    rows = []
    for stages in range(1, get_model(model).codec.num_stages + 1):
        prefix = truncate(data, stages)
        decoded = decode(prefix, model=model)
        rows.append({
            "stages": stages,
            "bpp": len(prefix) * 8 / (pixels.shape[0] * pixels.shape[1]),
            "psnr": float(peak_signal_noise_ratio(pixels, decoded, data_range=255)),
            "msssim": msssim(pixels, decoded),
        })
    return rows, seconds


def clamping_savings(records: list[dict], metric: str) -> dict[int, list[float]]:
    """Per stage count, each image's % fewer bits of the clamped finest level than the shipped one
    at equal `metric`, read off the line through the shipped finest two levels' points (metric
    against log rate); positive: clamping pays."""
    point = {(r["image"], r["quality"], r["variant"], r["stages"]): r for r in records}
    finest = max(r["quality"] for r in records)
    savings: dict[int, list[float]] = {}
    for image, quality, variant, stages in point:
        if quality != finest or variant != "clamped":
            continue
        coarser, shipped, clamped = (point[(image, q, v, stages)] for q, v in ((finest - 1, "shipped"), (finest, "shipped"), (finest, "clamped")))
        slope = (shipped[metric] - coarser[metric]) / math.log(shipped["bpp"] / coarser["bpp"])
        saved = (clamped[metric] - shipped[metric]) / slope - math.log(clamped["bpp"] / shipped["bpp"])
        savings.setdefault(stages, []).append(100 * saved)
    return savings


def print_savings(records: list[dict]) -> None:
    for metric in ("psnr", "msssim"):
        for stages, values in sorted(clamping_savings(records, metric).items()):
            shown = ", ".join(f"{v:+.1f}" for v in values)
            print(f"clamping saves at equal {metric}, {stages} stage(s): {shown} % (mean {sum(values) / len(values):+.2f} %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", help="shipped model id or .safetensors file")
    parser.add_argument("--read", type=Path, help="print the savings of a run saved with --out, encoding nothing")
    parser.add_argument("--images", type=Path, help="folder of images (default: scikit-image's bundled photographs)")
    parser.add_argument("--max-images", type=int)
    parser.add_argument("--out", type=Path, help="write every point as JSON")
    args = parser.parse_args()
    if args.read:
        print_savings(json.loads(args.read.read_text()))
        return
    if not args.model:
        parser.error("give a model, or --read a saved run")
    torch.set_num_threads(1)
    finest = len(get_model(args.model).codec.config.qualities) - 1
    factor = get_model(args.model).codec.config.qualities[finest]
    print(f"finest level {finest}: step factor {factor:g} (log2 {math.log2(factor):.2f}; trained {TRAINED_LOG2_RANGE})")
    images = folder_images(args.images) if args.images else bundled_images()
    records = []
    for image in images[: args.max_images]:
        for quality, variant in ((finest - 1, "shipped"), (finest, "shipped"), (finest, "clamped")):
            if variant == "clamped":
                with clamped_quality_input():
                    rows, seconds = points(image.pixels, args.model, quality)
            else:
                rows, seconds = points(image.pixels, args.model, quality)
            records += [{"image": image.name, "quality": quality, "variant": variant, **row} for row in rows]
            shown = "  ".join(f"{r['bpp']:.3f} bpp {r['psnr']:.2f} dB {r['msssim']:.4f}" for r in rows)
            print(f"{image.name:22s} level {quality} {variant:8s} {seconds:4.0f} s  {shown}", flush=True)
    print_savings(records)
    if args.out:
        args.out.write_text(json.dumps(records, indent=1) + "\n")


if __name__ == "__main__":
    main()
