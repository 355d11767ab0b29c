"""Training throughput of a preset on this machine: steps, images and megapixels per second per stage.

Times the step `cdcodec train` takes (same batch, crop, optimizer; bfloat16
autocast on CUDA, and on CPU with --precision bf16) on a freshly initialised
model; the data path (a random crop batch from photos held in memory) is timed
separately. Writes a JSON record with the device, thread count, arithmetic,
library versions and whether freed memory was kept in the process
(`codec/allocator.py`).

Usage:
    python scripts/train_throughput.py --data ../shared/data/train-photos --device cpu --threads 1 \
        --out results/training/throughput-cpu-1thread.json
    python scripts/train_throughput.py --data ../shared/data/train-photos --device cpu --threads 2 --precision bf16 \
        --out results/training/precision/throughput-cpu-2threads-bf16.json
    python scripts/train_throughput.py --data ../shared/data/train-photos --device cuda --out results/training/throughput-cuda.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from cdcodec.codec.allocator import keep_freed_memory
from cdcodec.codec.presets import preset_config
from cdcodec.codec.training.data import CropSampler
from cdcodec.codec.training.precision import PRECISIONS, arithmetic_name
from cdcodec.codec.training.throughput import measure_throughput
from cdcodec.codec.training.train import TrainSettings


def bundled_sampler(crop: int, seed: int) -> CropSampler:
    """Crops from scikit-image's bundled photos, for machines without the training set."""
    from skimage import data

    return CropSampler([np.asarray(getattr(data, name)()) for name in ("astronaut", "chelsea", "coffee")], crop, seed)


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="training photos (default: scikit-image's bundled photos)")
    parser.add_argument("--arch", default="cascade3")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help="auto: bfloat16 autocast on cuda, float32 on cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per stage")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per stage first")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    kept = keep_freed_memory()  # as `cdcodec train` does; CDCODEC_KEEP_FREED_MEMORY=0 to compare without
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = TrainSettings(steps_per_stage=(1,), batch=args.batch, crop=args.crop, pca_crops=4 * args.batch, precision=args.precision)
    started = time.perf_counter()
    sampler = CropSampler.from_folder(args.data, args.crop) if args.data else bundled_sampler(args.crop, 0)
    load_seconds = time.perf_counter() - started
    config = preset_config(args.arch, "throughput")
    stages = measure_throughput(config, sampler, settings, args.device, args.steps, args.warmup)
    report = {
        "command": " ".join(["python", *sys.argv]),
        "date": time.strftime("%Y-%m-%d"),
        "arch": args.arch,
        "device": device_name(args.device),
        "torch": torch.__version__,
        "batch": args.batch,
        "crop": args.crop,
        "keep_freed_memory": kept,
        "mixed_precision": arithmetic_name(args.device, args.precision),
        "data": str(args.data) if args.data else "scikit-image bundled photos",
        "decode_training_photos_seconds": round(load_seconds, 2),
        "stages": [s.as_dict(args.batch, args.crop) for s in stages],
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
