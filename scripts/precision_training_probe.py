"""Does a stage of the default model's layout train as well under bfloat16 autocast as in float32?

Issue 3 asks for mixed precision on GPU; no GPU call has run here, but this
machine's CPU runs bfloat16 convolutions (AVX512-BF16) through the same
`torch.autocast` path `cdcodec train` takes on CUDA. So this trains one stage
of the default model, the others frozen as shipped, exactly as `cdcodec train`
steps it (`training_step`, its learning-rate schedule, batch 16 of 128-pixel
crops), in float32 or under bfloat16 autocast: same seed, same crops. The stage
starts either fresh (`--start fresh`, initialised as `cdcodec train` does) or
as shipped (`--start shipped`: fine-tuning a converged stage, where a
gradient is a small sum of large terms and bfloat16 rounding shows most).
Before the first step (`--start shipped` only) and four times along the way it
evaluates in float32 on the Kodak images (never trained on), with true
rounding: the rate the stage's prior gives the rounded symbols, the PSNR after
the stage, and the loss R + λD the stage lowers.

One thread (set before torch starts), so two runs can go side by side on the
two cores and a run is repeatable. Usage:
    python scripts/precision_training_probe.py --precision bf16 --stage 1 --start fresh --steps 800 \\
        --data ../shared/data/train-photos --kodak ../shared/data/kodak \\
        --out results/training/precision/stage1-fresh-bf16.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from cdcodec.codec.allocator import keep_freed_memory  # noqa: E402
from cdcodec.codec.model import CascadeCodec  # noqa: E402
from cdcodec.codec.networks import lambda_for_step  # noqa: E402
from cdcodec.codec.training.data import CropSampler  # noqa: E402
from cdcodec.codec.training.precision import arithmetic_name, uses_autocast  # noqa: E402
from cdcodec.codec.training.train import TrainSettings, _lr_factor, _previous, init_stage, stage_optimizer, training_step  # noqa: E402
from cdcodec.codec.weights import load_shipped  # noqa: E402


def starting_codec(shipped: CascadeCodec, k: int, fresh: bool) -> CascadeCodec:
    """`shipped`'s layout and parameters, stage k+1's freshly drawn from torch's generator if `fresh`."""
    codec = CascadeCodec(shipped.config)
    new = {name: tensor.clone() for name, tensor in codec.stages[k].state_dict().items()}
    codec.load_state_dict(shipped.state_dict())
    if fresh:
        codec.stages[k].load_state_dict(new)
    return codec


def read_images(folder: Path) -> list[torch.Tensor]:
    return [torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1)[None].float() / 255 for p in sorted(folder.glob("*.png"))]


@torch.no_grad()
def evaluate(codec: CascadeCodec, k: int, images: list[torch.Tensor], lam: float) -> dict:
    """Rate (the prior's bits of the rounded symbols), PSNR and R + λD after stage k+1, in float32."""
    codec.eval()
    stage = codec.stages[k]
    bits = squared = pixels = 0.0
    for x in images:
        prev = _previous(codec, k, x)
        q = stage.quantize(stage.analyse(x, prev))
        bits += stage.prior.bits(q).item()
        squared += ((stage.synthesise(q, prev).clamp(0, 1) - x) ** 2).sum().item() / 3
        pixels += x.shape[2] * x.shape[3]
    mse = squared / pixels
    return {"bpp": bits / pixels, "psnr": -10 * math.log10(mse), "loss": bits / pixels + lam * mse}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", choices=("fp32", "bf16"), required=True)
    parser.add_argument("--stage", type=int, default=1, help="the stage that trains (1 = the first); the others stay as shipped")
    parser.add_argument("--start", choices=("fresh", "shipped"), required=True, help="the stage's starting parameters")
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, required=True, help="training photos")
    parser.add_argument("--kodak", type=Path, required=True, help="evaluation images (never trained on)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    keep_freed_memory()
    torch.set_num_threads(1)
    k = args.stage - 1
    settings = TrainSettings(steps_per_stage=(args.steps,) * 3, seed=args.seed, precision=args.precision)
    shipped, _ = load_shipped()  # before seeding: building it draws from torch's generator
    torch.manual_seed(args.seed)
    codec = starting_codec(shipped, k, fresh=args.start == "fresh")
    sampler = CropSampler.from_folder(args.data, settings.crop, seed=args.seed, progress=False)
    if args.start == "fresh":
        init_stage(codec, k, sampler, settings, "cpu")
    optimizer = stage_optimizer(codec, k, settings)
    lam = lambda_for_step(codec.stages[k].config.step)
    peaks = [group["lr"] for group in optimizer.param_groups]
    images = read_images(args.kodak)
    use_amp = uses_autocast("cpu", args.precision)
    rows, train_seconds = [], 0.0
    if args.start == "shipped":
        rows.append({"step": 0, "train_seconds": 0.0, **evaluate(codec, k, images, lam)})
    for step in range(args.steps):
        for group, peak in zip(optimizer.param_groups, peaks):
            group["lr"] = peak * _lr_factor(step, args.steps)
        started = time.perf_counter()
        training_step(codec, k, sampler.batch(settings.batch), optimizer, lam, settings, use_amp)
        train_seconds += time.perf_counter() - started
        if (step + 1) % (args.steps // 4) == 0:
            rows.append({"step": step + 1, "train_seconds": round(train_seconds, 1), **evaluate(codec, k, images, lam)})
            print(json.dumps(rows[-1]), flush=True)
    record = {
        "command": " ".join(["python", *sys.argv]),
        "date": time.strftime("%Y-%m-%d"),
        "layout_of": shipped.config.model_id,
        "stage": args.stage,
        "start": args.start,
        "arithmetic": arithmetic_name("cpu", args.precision),
        "device": "cpu, 1 torch thread",
        "torch": torch.__version__,
        "seed": args.seed,
        "evaluated_on": f"{len(images)} images of {args.kodak}",
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
