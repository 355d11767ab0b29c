"""Does cdcodec spend bits on fine chroma detail that MS-SSIM hardly rewards? (a measurement)

On scikit-image's `rocket` cdcodec needs far more bits than WebP for the same
MS-SSIM, while on the other photos it needs fewer. rocket has unusually strong
fine chroma detail for its luma detail, and the training photos (BSDS500
JPEGs, all 4:2:0) have little, while WebP's 4:2:0 sampling drops most of it.
This tests that reading: each image is also encoded after a chroma-only
low-pass (Gaussian of `--sigma` pixels on Cb and Cr, BT.601 full range, luma
untouched), and both curves are scored against the *original*. A large saving
means the plain encode spent bits on chroma detail the metric barely sees.

    python scripts/chroma_prefilter.py rocket astronaut coffee ../shared/data/kodak/kodim23.png \
        --against results/bench/skimage.json --against results/bench/kodak.json \
        --out results/bench/chroma-prefilter.md

(Session 9 measured `cdc-msssim-2` and `cdc-mse-1`, the default models then.
Both have since retired from trained/; to repeat that run, fetch their
weights as `trained/manifest.json`'s "retired" entries say and pass the files
with `--model`.)

With `--against` (`cdcodec bench` JSONs), each curve is also compared with
WebP's points for the same image there (BD-rate in MS-SSIM over 0.25-1.5 bpp,
as in `rereference.py --bpp-window 0.25 1.5`): how much of the gap to WebP
the low-pass closes.

Images: names of scikit-image photos or paths. About 2 CPU minutes per image
and model (5 quality levels × 3 stages, each encoded and decoded).
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter
from skimage import data as skdata

from cdcodec.bench import metrics
from cdcodec.bench.bdrate import bd_rate, bd_rate_in_window
from cdcodec.bench.jsonfile import read_json
from cdcodec.codec.pipeline import decode, encode, quality_levels

# RGB -> (Y, Cb, Cr) without offsets; its inverse maps back.
_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def chroma_lowpass(rgb: np.ndarray, sigma: float) -> np.ndarray:
    """`rgb` with Cb and Cr blurred by a Gaussian of `sigma` pixels and luma kept."""
    ycc = rgb.astype(np.float64) @ _YCC.T
    for c in (1, 2):
        ycc[..., c] = gaussian_filter(ycc[..., c], sigma)
    return np.clip(np.rint(ycc @ np.linalg.inv(_YCC).T), 0, 255).astype(np.uint8)


def chroma_to_luma_detail(rgb: np.ndarray) -> float:
    """Mean horizontal |difference| of Cb over that of Y: how much fine colour detail there is."""
    ycc = rgb.astype(np.float64) @ _YCC.T
    detail = np.mean(np.abs(np.diff(ycc, axis=1)), axis=(0, 1))
    return float(detail[1] / detail[0])


def load(name: str) -> tuple[str, np.ndarray]:
    if Path(name).is_file():
        return Path(name).stem, np.asarray(Image.open(name).convert("RGB"))
    return name, getattr(skdata, name)()


def curve(reference: np.ndarray, source: np.ndarray, model: str) -> list[dict]:
    """Every stage count × quality level of `source`, scored against `reference`."""
    points = []
    for stages in (1, 2, 3):
        for quality in range(quality_levels(model)):
            data = encode(source, stages=stages, quality=quality, model=model)
            points.append(metrics.measure(reference, decode(data, model=model), len(data)))
    return points


def _axes(points: list[dict], key: str) -> tuple[list[float], list[float]]:
    """(rates, qualities) with SSIM-like metrics in dB, as the bench's BD-rates use them."""
    return [p["bpp"] for p in points], [p[key] if key == "psnr" else metrics.to_db(p[key]) for p in points]


def saving(plain: list[dict], filtered: list[dict], key: str) -> float | None:
    return bd_rate(*_axes(plain, key), *_axes(filtered, key))


def webp_points(bench_files: tuple[Path, ...], image: str) -> list[dict]:
    """WebP's measurements of `image` in the first bench JSON that has them."""
    for path in bench_files:
        points = [m for m in read_json(path)["measurements"] if m["image"] == image and m["codec"] == "webp"]
        if points:
            return points
    return []


def against_webp(webp: list[dict], points: list[dict]) -> str:
    value = bd_rate_in_window(*_axes(webp, "ms_ssim"), *_axes(points, "ms_ssim"), 0.25, 1.5) if webp else None
    return "–" if value is None else f"{value:+.1f} %"


@click.command()
@click.argument("images", nargs=-1, required=True)
@click.option("--model", "models", multiple=True, default=["cdc-msssim-9", "cdc-mix-11"], show_default=True)
@click.option("--sigma", type=float, default=1.0, show_default=True)
@click.option("--against", "bench_files", multiple=True, type=click.Path(exists=True, path_type=Path), help="`cdcodec bench` JSON with WebP points for the images.")
@click.option("--out", type=click.Path(path_type=Path), required=True)
def main(images, models, sigma, bench_files, out) -> None:
    lines = [
        "| image | Cb/Y detail | low-pass alone, PSNR | model | BD-rate PSNR | BD-rate MS-SSIM | MS-SSIM vs WebP, plain | MS-SSIM vs WebP, low-passed |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for name in images:
        label, rgb = load(name)
        filtered = chroma_lowpass(rgb, sigma)
        for model in models:
            plain, low = curve(rgb, rgb, model), curve(rgb, filtered, model)
            row = f"| {label} | {chroma_to_luma_detail(rgb):.2f} | {metrics.psnr(rgb, filtered):.2f} dB | {model}"
            row += "".join(f" | {saving(plain, low, key):+.1f} %" for key in ("psnr", "ms_ssim"))
            webp = webp_points(bench_files, label)
            row += f" | {against_webp(webp, plain)} | {against_webp(webp, low)} |"
            click.echo(row)
            lines.append(row)
    note = (f"BD-rate of encoding the chroma-low-passed image (σ = {sigma}) against encoding the original, "
            "both scored against the original over their common range; negative = the low-passed input needs fewer bits. "
            "Last two columns: each against WebP on the same image, 0.25-1.5 bpp.")
    out.write_text("\n".join(lines + ["", note, ""]))


if __name__ == "__main__":
    main()
