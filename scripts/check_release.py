"""Release check of a shipped model on a folder of images (Kodak), through the real CLI.

For every image it runs `cdcodec encode`, then `cdcodec decode --stages k` and
`cdcodec truncate --stages k` for every k (the real click commands, invoked in
this process so the model loads once), and checks:
- bits per pixel (from the real file bytes) and PSNR rise with every stage;
- the truncated file is a byte prefix of the full file and decodes to the same
  pixels as `decode --stages k`;
- the full-stage result against Pillow JPEG 4:2:0 at the same bits per pixel
  (the two JPEG qualities whose rates bracket cdcodec's are found by bisection
  over 1-100; PSNR and SSIM are interpolated linearly in bpp between them),
  averaged over the images.

Usage:
    python scripts/check_release.py --images ../shared/data/kodak --out results/release-check/kodak.json
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from click.testing import CliRunner
from skimage.metrics import structural_similarity

from cdcodec.cli.main import cli


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(structural_similarity(a, b, channel_axis=2 if a.ndim == 3 else None, data_range=255))


def run(*args: str) -> str:
    """Run one cdcodec command through its click entry point; return its stdout."""
    result = CliRunner().invoke(cli, list(args))
    if result.exit_code != 0:
        raise RuntimeError(f"cdcodec {' '.join(args)} failed: {result.stderr.strip() or result.exception}")
    return result.stdout


def jpeg_point(image: np.ndarray, quality: int) -> tuple[float, float, float]:
    """(bpp, PSNR, SSIM) of Pillow JPEG 4:2:0 at `quality`."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality, subsampling=2)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return 8 * buffer.tell() / (image.shape[0] * image.shape[1]), psnr(image, decoded), ssim(image, decoded)


def jpeg_at_rate(image: np.ndarray, bpp: float) -> tuple[float, float] | None:
    """JPEG's PSNR and SSIM at `bpp`, between the bracketing qualities; None outside JPEG's range."""
    sizes = {}

    def rate(quality: int) -> float:
        if quality not in sizes:
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="JPEG", quality=quality, subsampling=2)
            sizes[quality] = 8 * buffer.tell() / (image.shape[0] * image.shape[1])
        return sizes[quality]

    if not rate(1) <= bpp <= rate(100):
        return None
    low, high = 1, 100
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if rate(middle) <= bpp else (low, middle)
    (r0, p0, s0), (r1, p1, s1) = jpeg_point(image, low), jpeg_point(image, high)
    t = 0.0 if r1 == r0 else (bpp - r0) / (r1 - r0)
    return p0 + t * (p1 - p0), s0 + t * (s1 - s0)


def check_image(path: Path, work: Path, model_args: list[str]) -> dict:
    original = np.asarray(Image.open(path).convert("RGB"))
    pixels = original.shape[0] * original.shape[1]
    full = work / "full.cdc"
    start = time.perf_counter()
    run("encode", str(path), str(full), "--force", *model_args)
    encode_seconds = time.perf_counter() - start
    info = json.loads(run("info", str(full), "--json"))
    stages = []
    for k in range(1, info["stages_present"] + 1):
        decoded_path, prefix_path, prefix_png = work / f"s{k}.png", work / f"s{k}.cdc", work / f"t{k}.png"
        start = time.perf_counter()
        run("decode", str(full), str(decoded_path), "--stages", str(k), "--force", *model_args)
        decode_seconds = time.perf_counter() - start
        run("truncate", str(full), str(prefix_path), "--stages", str(k), "--force")
        run("decode", str(prefix_path), str(prefix_png), "--force", *model_args)
        decoded = np.asarray(Image.open(decoded_path))
        prefix_bytes = prefix_path.read_bytes()
        stages.append(
            {
                "stage": k,
                "bytes": len(prefix_bytes),
                "bpp": 8 * len(prefix_bytes) / pixels,
                "psnr": psnr(original, decoded),
                "ssim": ssim(original, decoded),
                "truncate_is_prefix": full.read_bytes().startswith(prefix_bytes),
                "truncate_decodes_same": bool(np.array_equal(decoded, np.asarray(Image.open(prefix_png)))),
                "decode_seconds_cli": decode_seconds,
            }
        )
    jpeg = jpeg_at_rate(original, stages[-1]["bpp"])
    return {
        "image": path.name,
        "encode_seconds_cli": encode_seconds,
        "stages": stages,
        "monotonic_bpp": all(a["bpp"] < b["bpp"] for a, b in zip(stages, stages[1:])),
        "monotonic_psnr": all(a["psnr"] < b["psnr"] for a, b in zip(stages, stages[1:])),
        "jpeg420_at_full_rate": None if jpeg is None else {"psnr": jpeg[0], "ssim": jpeg[1]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default=None, help="model id or weights file (default: shipped default)")
    args = parser.parse_args()
    model_args = ["--model", args.model] if args.model else []
    files = sorted(p for p in args.images.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            results.append(check_image(path, Path(tmp), model_args))
            last = results[-1]["stages"]
            print(f"{path.name}: " + "  ".join(f"s{s['stage']} {s['bpp']:.3f} bpp {s['psnr']:.2f} dB" for s in last), flush=True)
    n_stages = len(results[0]["stages"])
    summary = {
        "images": len(results),
        "all_monotonic_bpp": all(r["monotonic_bpp"] for r in results),
        "all_monotonic_psnr": all(r["monotonic_psnr"] for r in results),
        "all_truncations_exact": all(s["truncate_is_prefix"] and s["truncate_decodes_same"] for r in results for s in r["stages"]),
        "mean_per_stage": [
            {
                "stage": k + 1,
                "bpp": float(np.mean([r["stages"][k]["bpp"] for r in results])),
                "psnr": float(np.mean([r["stages"][k]["psnr"] for r in results])),
                "ssim": float(np.mean([r["stages"][k]["ssim"] for r in results])),
            }
            for k in range(n_stages)
        ],
    }
    matched = [r for r in results if r["jpeg420_at_full_rate"]]
    summary["full_stage_vs_jpeg420_same_bpp"] = {
        "images_compared": len(matched),
        "cdcodec_psnr": float(np.mean([r["stages"][-1]["psnr"] for r in matched])),
        "jpeg_psnr": float(np.mean([r["jpeg420_at_full_rate"]["psnr"] for r in matched])),
        "cdcodec_ssim": float(np.mean([r["stages"][-1]["ssim"] for r in matched])),
        "jpeg_ssim": float(np.mean([r["jpeg420_at_full_rate"]["ssim"] for r in matched])),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": " ".join(["python", *sys.argv]), "summary": summary, "images": results}, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
