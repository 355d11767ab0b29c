"""How far one bfloat16-autocast training step of the default model lands from the float32 one.

For each stage of the shipped default model: one batch of training crops, the
stage's loss (rate + λ·distortion, as `cdcodec train` forms it) and its
gradient, once in float32 and once under bfloat16 autocast, with the same rate
noise drawn. Reports the relative change of the loss, rate and PSNR, the cosine
between the two gradients and the ratio of their norms, over the whole stage
and for the parameter tensor whose gradient moved most; and, for scale, the
same between two float32 steps that differ only in the rate noise drawn (the
noise every training step lives with). A trained model's
gradient is a small sum of large terms, so this is where bfloat16's 8-bit
mantissa shows first (scripts/precision_training_probe.py measures what it
does to training).

Usage:
    python scripts/precision_gradient_probe.py --data ../shared/data/train-photos \\
        --out results/training/precision/gradients.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

from cdcodec.codec.networks import lambda_for_step
from cdcodec.codec.training.data import CropSampler
from cdcodec.codec.training.train import TrainSettings, stage_loss
from cdcodec.codec.weights import load_shipped


def stage_loss_and_gradient(codec, k: int, x: torch.Tensor, settings: TrainSettings, use_amp: bool, noise_seed: int):
    """(loss, bpp, PSNR, {parameter: gradient}) of stage k on batch x, the loss as `cdcodec train` forms it."""
    codec.zero_grad(set_to_none=True)
    torch.manual_seed(noise_seed)  # the rate noise: the only draw `stage_loss` makes
    loss, mse, bpp = stage_loss(codec, k, x, lambda_for_step(codec.stages[k].config.step), settings, use_amp)
    loss.backward()
    gradients = {name: p.grad.detach().clone() for name, p in codec.stages[k].named_parameters() if p.grad is not None}
    return loss.item(), bpp.item(), -10 * math.log10(mse.item()), gradients


def compare(a: torch.Tensor, b: torch.Tensor) -> dict:
    return {"cosine": round(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0).item(), 4),
            "norm_ratio": round((b.norm() / a.norm()).item(), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="training photos")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    codec, _ = load_shipped()
    codec.requires_grad_(True)
    x = CropSampler.from_folder(args.data, 128, seed=args.seed, progress=False).batch(args.batch)
    settings = TrainSettings(steps_per_stage=(1,) * codec.num_stages)
    stages = []
    for k in range(codec.num_stages):
        loss32, bpp32, psnr32, grad32 = stage_loss_and_gradient(codec, k, x, settings, False, args.seed)
        loss16, bpp16, psnr16, grad16 = stage_loss_and_gradient(codec, k, x, settings, True, args.seed)
        other_noise = stage_loss_and_gradient(codec, k, x, settings, False, args.seed + 1)[3]
        names = [n for n in grad32 if grad32[n].norm() > 0]
        per_tensor = {n: compare(grad32[n], grad16[n]) for n in names}
        worst = min(names, key=lambda n: per_tensor[n]["cosine"])
        whole = lambda gradients: torch.cat([gradients[n].flatten() for n in names])  # noqa: E731
        stages.append({
            "stage": k + 1,
            "float32": {"loss": round(loss32, 5), "bpp": round(bpp32, 5), "psnr": round(psnr32, 3)},
            "bfloat16_autocast": {"loss": round(loss16, 5), "bpp": round(bpp16, 5), "psnr": round(psnr16, 3)},
            "loss_change": f"{100 * (loss16 / loss32 - 1):+.2f}%",
            "gradient": compare(whole(grad32), whole(grad16)),
            "least_alike_tensor": {"name": worst, **per_tensor[worst]},
            "float32_other_noise_gradient": compare(whole(grad32), whole(other_noise)),
        })
        print(json.dumps(stages[-1]), flush=True)
    record = {
        "command": " ".join(["python", *sys.argv]),
        "date": time.strftime("%Y-%m-%d"),
        "model": codec.config.model_id,
        "device": "cpu, 1 torch thread",
        "torch": torch.__version__,
        "stages": stages,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
