"""Does the default model's stage 1 gain from overlapping kernels when fine-tuned rather than trained anew?

`lapped_stage1_probe.py` trains stage 1 from scratch with and without kernels
that reach beyond the 16×16 block. A from-scratch stage 1 means a whole new
cascade (stages 2 and 3 refine its image), hours that need a GPU. This asks the
cheaper question: start from the default model's stage 1, widen its
transform's kernels by `--overlap` pixels on every side (margins zero, so the
model starts exactly as shipped), fine-tune stage 1 alone (transform, encoder
branch, refine CNN, rate model; later stages unused) for `--steps` steps at its
trained step, with the recipe of `cdcodec train` (cosine schedule; batch 16 of
128×128 crops) and the default model's training distortion (squared error with
a 0.3 share of MS-SSIM), refit stage 1's tables at the five quality levels on
the training photos, and measure stage 1 on Kodak as `lapped_stage1_probe.py`
does (rounded symbols, real bytes). The control, `--overlap 0`, fine-tunes the
same way without margins, so the pair compares the margins, not the extra
steps; `--steps 0 --overlap 0` measures the shipped stage 1 itself (its own tables).
`--cascade` measures the whole cascade instead (every stage prefix, on the
four probe images of `kodak_sample`), stages 2 and 3 as shipped: what the new
stage 1 does to the later stages before they are fine-tuned for it.
No checkpoints: an arm is a quarter of an hour on one core.

    python scripts/lapped_finetune_probe.py --overlap 0 --work /tmp/lapped-ft/o0
    python scripts/lapped_finetune_probe.py --overlap 4 --work /tmp/lapped-ft/o4
    python scripts/lapped_stage1_probe.py --compare /tmp/lapped-ft/o0 /tmp/lapped-ft/o4
    python scripts/lapped_finetune_probe.py --overlap 4 --cascade --work /tmp/lapped-ft/o4  # and o0, shipped
    python scripts/lapped_stage1_probe.py --compare /tmp/lapped-ft/o0 /tmp/lapped-ft/o4 --cascade
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from cdcodec.codec.networks import BlockTransform, lambda_for_step
from cdcodec.codec.pipeline import LoadedModel, get_model
from cdcodec.codec.training.data import CropSampler
from cdcodec.codec.training.train import TrainSettings, _fit_stage_tables, _lr_factor, stage_optimizer, training_step

from kodak_sample import SHARED_DATA, kodak_sample
from lapped_stage1_probe import measure_arm


def widened(shipped: BlockTransform, overlap: int) -> BlockTransform:
    """`shipped`'s block transform with kernels `overlap` pixels wider on every side, zero there."""
    lapped = BlockTransform(shipped.block, overlap=overlap)
    lapped.set_centre(shipped.analysis.weight, shipped.synthesis.weight)
    return lapped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overlap", type=int, default=0)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=2.5e-4, help="encoder branch and refine CNN (train-refine's default)")
    parser.add_argument("--transform-lr", type=float, default=1e-4, help="the block transform and its margins")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--cascade", action="store_true",
                        help="measure every stage prefix of the whole cascade (stages 2 and 3 as shipped) on the 4 probe images instead")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    loaded = get_model(None)
    codec = loaded.codec
    stage = codec.stages[0]
    if args.overlap:
        stage.transform = widened(stage.transform, args.overlap)
    settings = TrainSettings(steps_per_stage=(args.steps,), lr=args.lr, transform_lr=args.transform_lr, seed=args.seed,
                             metric="mixed", ms_ssim_share=0.3)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.steps:
        sampler = CropSampler.from_folder(SHARED_DATA / "train-photos", settings.crop, seed=args.seed)
        optimizer = stage_optimizer(codec, 0, settings)
        base_lrs = [group["lr"] for group in optimizer.param_groups]
        lam = lambda_for_step(stage.config.step)
        start = time.time()
        for step in range(args.steps):
            for group, base in zip(optimizer.param_groups, base_lrs):
                group["lr"] = base * _lr_factor(step, args.steps)
            loss, mse, bpp = training_step(codec, 0, sampler.batch(settings.batch), optimizer, lam, settings, False)
            if step % 50 == 0 or step == args.steps - 1:
                print(f"step {step}: loss {loss.item():.4f} bpp {bpp.item():.3f} psnr {-10 * math.log10(mse.item()):.2f}", flush=True)
        seconds = time.time() - start
        codec.eval()
        codec.tables[0] = {q: _fit_stage_tables(codec, 0, sampler, settings, "cpu", q) for q in range(len(codec.config.qualities))}
        (args.work / "training.json").write_text(json.dumps({**vars(args), "work": str(args.work), "train_seconds": round(seconds)}))
        print(f"trained {args.steps} steps in {seconds:.0f} s; stage 1 tables refit", flush=True)
    codec.eval()
    model = LoadedModel(codec, loaded.digest)
    if args.cascade:
        measure_arm(model, args.work, kodak_sample(4), codec.num_stages)
    else:
        measure_arm(model, args.work)


if __name__ == "__main__":
    main()
