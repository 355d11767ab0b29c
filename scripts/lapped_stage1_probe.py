"""Would stage 1 code better with overlapping basis functions? A controlled test at the codec study's scale.

AVIF's remaining lead on Kodak sits on images with straight edges and smooth
areas (`results/bench/kodak-per-image-vs-avif.md`), and decoder-side levers
did not reach it. One suspect is stage 1's transform itself: its analysis and
synthesis act on disjoint 16×16 blocks, so a smooth ramp or an edge that
crosses a block border is coded twice, each half with basis functions that stop
at the border. A lapped transform's basis functions overlap their neighbours'.

This trains stage 1 of `cascade3` with the codec study's plain recipe
(`experiments/codec_study`: batch 16 of 128×128 crops, cosine schedule, one
thread), once as shipped (`--overlap 0`) and once with analysis and synthesis
kernels that reach `--overlap` pixels beyond the block on every side (stride
still 16, so the same latent grid and coder). The lapped arm starts as the
block transform: the PCA basis in the kernels' centre, zero margins, which
training then grows (the transform's own learning rate, `--transform-lr`,
defaults to the recipe's). Each arm then encodes the Kodak images at stage 1's
five quality levels, symbols rounded (no search, so the transforms are
compared, not the encoder), post-filters as the encoder chooses them, rates
from the real .cdc bytes, and writes its points to `<work>/points.json`.
`--compare A B` prints both arms' mean points and the BD-rate of B against A
(the bench's PCHIP on upper envelopes, MS-SSIM in dB).

Overlap plus the refine CNN's 4 layers stays within half a block, the reach the
encoder's symbol search assumes (`StageConfig`). The lapped arm exists only in
this script (it swaps `codec/stage.py`'s BlockTransform in-process; exact
modes would need an overlap-add preview): a probe, not a format.

    python scripts/lapped_stage1_probe.py --overlap 0 --work /tmp/lapped/o0
    python scripts/lapped_stage1_probe.py --overlap 4 --work /tmp/lapped/o4
    python scripts/lapped_stage1_probe.py --compare /tmp/lapped/o0 /tmp/lapped/o4
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cdcodec.bench import metrics
from cdcodec.bench.bdrate import bd_rate
from cdcodec.bench.jsonfile import read_json
from cdcodec.bench.metrics import to_db
from cdcodec.bitstream import truncate
from cdcodec.codec import stage as stage_module
from cdcodec.codec.networks import BlockTransform
from cdcodec.codec.pipeline import encode, decode, quality_levels
from cdcodec.codec.presets import preset_config
from cdcodec.codec.training.train import TrainSettings, train_cascade

from kodak_sample import KODAK, SHARED_DATA


def train_arm(overlap: int, work: Path, steps: int, seed: int, transform_lr: float | None) -> Path:
    out = work / "model.safetensors"
    if not out.exists():
        settings = TrainSettings(steps_per_stage=(steps,), seed=seed, **({} if transform_lr is None else {"transform_lr": transform_lr}))
        start = time.time()
        train_cascade(preset_config("cascade3-stage1", f"lapped-probe-o{overlap}"), SHARED_DATA / "train-photos", work, settings, out=out)
        print(f"trained in {time.time() - start:.0f} s (this call; a resumed run's earlier time is in {work}/log.json)", flush=True)
    return out


def measure_arm(model, work: Path, images: list[Path] | None = None, stages: int = 1) -> None:
    """`model` (a weights file or a LoadedModel) on Kodak (or `images`) at every level, every
    prefix of `stages` stages, into work/points.json (work/points-cascade.json when stages > 1)."""
    records = []
    for path in images or sorted(KODAK.glob("*.png")):
        pixels = np.asarray(Image.open(path).convert("RGB"))
        for level in range(quality_levels(model)):
            data = encode(pixels, stages=stages, model=model, quality=level, search_rounds=0)
            for count in range(1, stages + 1):
                prefix = truncate(data, count)
                record = metrics.measure(pixels, np.asarray(decode(prefix, model=model)), len(prefix))
                records.append({"image": path.stem, "level": level, **({"stages": count} if stages > 1 else {}), **record})
        print(f"{path.stem} measured", flush=True)
    (work / ("points.json" if stages == 1 else "points-cascade.json")).write_text(json.dumps(records, indent=1))


def points_from_results(results: Path, codec: str, out: Path) -> None:
    """A bench results file's points of `codec` ("qL stages=K" settings) in measure_arm's cascade format."""
    records = []
    for m in read_json(results)["measurements"]:
        if m["codec"] == codec:
            level, stages = (int(part.split("=")[-1].lstrip("q")) for part in m["setting"].split())
            records.append({"image": m["image"], "level": level, "stages": stages, **{k: m[k] for k in ("bpp", "psnr", "ms_ssim")}})
    if not records:
        raise SystemExit(f"{results} has no points of {codec!r}")
    out.write_text(json.dumps(records, indent=1))


def mean_curve(points: Path) -> dict[str, tuple[float, float, float]]:
    """{label: mean (bpp, PSNR, MS-SSIM)} per level (and stage count, for cascade points)."""
    records = json.loads(points.read_text())
    groups = sorted({(r["level"], r.get("stages", 1)) for r in records})
    cascade = len({stages for _, stages in groups}) > 1

    def label(group: tuple[int, int]) -> str:
        return f"{group[0]} s{group[1]}" if cascade else f"{group[0]}"

    return {
        label(g): tuple(float(np.mean([r[key] for r in records if (r["level"], r.get("stages", 1)) == g])) for key in ("bpp", "psnr", "ms_ssim"))
        for g in groups
    }


def compare(first: Path, second: Path, file: str = "points.json") -> None:
    a, b = mean_curve(first / file), mean_curve(second / file)
    print(f"level | {first.name}: bpp PSNR MS-SSIM | {second.name}: bpp PSNR MS-SSIM")
    for label in a:
        pa, pb = a[label], b[label]
        print(f"{label} | {pa[0]:.4f} {pa[1]:.3f} {pa[2]:.5f} | {pb[0]:.4f} {pb[1]:.3f} {pb[2]:.5f}")
    a, b = list(a.values()), list(b.values())
    psnr = bd_rate([p[0] for p in a], [p[1] for p in a], [p[0] for p in b], [p[1] for p in b])
    msssim = bd_rate([p[0] for p in a], [to_db(p[2]) for p in a], [p[0] for p in b], [to_db(p[2]) for p in b])
    print(f"BD-rate {second.name} against {first.name}: PSNR {psnr:+.2f}%  MS-SSIM (dB) {msssim:+.2f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overlap", type=int, default=0, help="pixels the kernels reach beyond the block on each side")
    parser.add_argument("--work", type=Path, help="the arm's folder (checkpoints, weights, points); resumes there")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--transform-lr", type=float, default=None, help="the transform's learning rate (default: the recipe's)")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"), help="print the BD-rate of arm B against arm A")
    parser.add_argument("--cascade", action="store_true", help="with --compare: the arms' cascade points (lapped_finetune_probe.py --cascade)")
    parser.add_argument("--points-from", nargs=2, metavar=("RESULTS", "CODEC"),
                        help="write CODEC's points in a bench results file (scripts/model_vs_bench.py --out) as --work's cascade points, to --compare with the arms")
    args = parser.parse_args()
    if args.points_from:
        if args.work is None:
            parser.error("--points-from needs --work")
        args.work.mkdir(parents=True, exist_ok=True)
        points_from_results(Path(args.points_from[0]), args.points_from[1], args.work / "points-cascade.json")
        return
    if args.compare:
        compare(*args.compare, "points-cascade.json" if args.cascade else "points.json")
        return
    if args.work is None:
        parser.error("--work is required unless --compare")
    torch.set_num_threads(1)
    if args.overlap:
        stage_module.BlockTransform = functools.partial(BlockTransform, overlap=args.overlap)
    args.work.mkdir(parents=True, exist_ok=True)
    model = train_arm(args.overlap, args.work, args.steps, args.seed, args.transform_lr)
    measure_arm(model, args.work)


if __name__ == "__main__":
    main()
