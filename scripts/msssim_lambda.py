"""Where MS_SSIM_LAMBDA_SCALE comes from: 1 − MS-SSIM against squared error after each stage of a model.

`cdcodec train --metric ms-ssim` weighs 1 − MS-SSIM with the squared-error λ
times codec.similarity.MS_SSIM_LAMBDA_SCALE. This prints, for every stage
of a trained model on random training crops, both distortions (the training
loss's own, `distortion`) and their ratio; the constant should sit within the range of the ratios.

Usage:
    python scripts/msssim_lambda.py --data ../shared/data/train-photos --model cdc-mse-1.safetensors

The constant was chosen on `cdc-mse-1` (34–38), retired from trained/ in session
36: fetch its weights as `trained/manifest.json`'s "retired" entry says
(`git show b4a2785:trained/cdc-mse-1-2fc3d4d0.safetensors > cdc-mse-1.safetensors`)
and pass the file. Without --model: the default model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from cdcodec.codec.pipeline import get_model
from cdcodec.codec.training.data import CropSampler
from cdcodec.codec.training.train import _previous, distortion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="training photos (never the evaluation set)")
    parser.add_argument("--model", default=None, help="shipped model id or .safetensors file (default: the default model)")
    parser.add_argument("--batches", type=int, default=4, help="batches of 16 crops of 128x128")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    codec = get_model(args.model).codec.eval()
    sampler = CropSampler.from_folder(args.data, 128, seed=args.seed, progress=False)
    batches = [sampler.batch(16) for _ in range(args.batches)]
    with torch.no_grad():
        for k in range(codec.num_stages):
            recons = [(_previous(codec, k + 1, x).clamp(0, 1), x) for x in batches]
            mse = sum(distortion(r, x, "mse").item() for r, x in recons) / len(recons)
            ms = sum(distortion(r, x, "ms-ssim").item() for r, x in recons) / len(recons)
            print(f"stage {k + 1}: squared error {mse:.6f}, 1 - MS-SSIM {ms:.5f}, ratio {ms / mse:.1f}")


if __name__ == "__main__":
    main()
