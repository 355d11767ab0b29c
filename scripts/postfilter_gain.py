"""What does the adaptive post-filter buy? (a measurement; the filter itself is codec/postfilter.py)

Encodes Kodak images at every quality level of a model twice, with the
post-filters the encoder chooses and with none (`encode(..., post_filters=False)`),
decodes every stage prefix of each file, and prints the mean rate (real file
bytes, filter blocks included) and quality of every operating point, the
BD-rates of "with" against "without" (PCHIP on upper envelopes, MS-SSIM in dB),
and how often each filter mode was chosen.

    python scripts/postfilter_gain.py --model default --images 4 --threads 1

With `--against OTHER` it compares two models instead, both with their
post-filters on: OTHER's points are the "without" arm, the model's the "with"
arm (e.g. `--model cdc-mix-5 --against cdc-mix-2`).

`--images n` takes every 24/n-th Kodak image (4: kodim01, 07, 13, 19; 24: all).
"""

import argparse
from collections import Counter

import numpy as np
import torch
from PIL import Image

import cdcodec
from cdcodec.bitstream import unpack
from cdcodec.bitstream.filters import FilterMode, split_latent_section
from kodak_sample import kodak_sample
from paired_points import add_prefix_points, print_paired


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--against", default=None, help="compare with this model (post-filters on in both) instead of with no post-filters")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = None if args.model == "default" else args.model
    images = kodak_sample(args.images)
    levels = range(cdcodec.quality_levels(model))
    # arm -> (model, post-filters on): False is the "without" arm, True the "with" arm.
    arms = {False: (model, False), True: (model, True)} if args.against is None else {False: (args.against, True), True: (model, True)}
    points = {False: {}, True: {}}
    modes = Counter()
    for path in images:
        image = np.asarray(Image.open(path).convert("RGB"))
        for arm, (arm_model, filtered) in arms.items():
            for quality in levels:
                data = cdcodec.encode(image, quality=quality, model=arm_model, post_filters=filtered)
                add_prefix_points(points[arm], quality, image, data, arm_model)
                if arm:
                    for stages, payload in enumerate(unpack(data).payloads, start=1):
                        modes[(stages, FilterMode(split_latent_section(payload)[0].mode).name)] += 1
        print(path.name, "done", flush=True)
    print_paired(points[False], points[True], ("without", "with"), "quality stages")
    print("filter modes chosen (stage: mode count):", dict(sorted(modes.items())))


if __name__ == "__main__":
    main()
