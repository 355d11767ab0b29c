"""Which inputs should the post-filter read? (an oracle probe behind formats 8 and 9)

For a few Kodak images, every quality level in a list and every stage, fits
the post-filter by least squares on the decoded image itself, coefficients
unquantized and free (an oracle: the most such a filter could give), with
three input sets, and prints the PSNR gain of each over the unfiltered stage:

- `f8`: format 8's inputs: every channel's 8 neighbour differences, the
  colour matrix, a constant (`codec/postfilter.py` without the two shares);
- `f9`: format 9's, the shipped set: f8 plus, per channel, what the refine CNN
  added to the stage's linear estimate and what the stage added to the image
  before it;
- `f9+`: f9 plus the 8 neighbour differences of the CNN's share in every
  channel (72 more coefficients).

    python scripts/postfilter_inputs_probe.py --images 4 --levels 0,2,4

"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image

from cdcodec.codec import postfilter
from cdcodec.codec.pipeline import _filter_inputs, _to_tensor, get_model

from kodak_sample import kodak_sample


def neighbour_differences(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
    columns = [
        (padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width, s] - image[:, :, s]).reshape(-1)
        for s in range(3)
        for dy, dx in postfilter.NEIGHBOURS
    ]
    return np.stack(columns, axis=1)


def oracle_gain(features: np.ndarray, decoded: np.ndarray, original: np.ndarray) -> float:
    """PSNR gain (dB) of the least-squares filter on these features, output rounded and clipped."""
    target = (original - decoded).reshape(-1, 3)
    weights = np.linalg.lstsq(features, target, rcond=None)[0]
    shown = np.clip(np.round(decoded + (features @ weights).reshape(decoded.shape)), 0, 255)
    before = np.mean((np.round(decoded).clip(0, 255) - original) ** 2)
    return 10 * np.log10(before / np.mean((shown - original) ** 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--levels", default="0,2,4")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    codec = get_model(None).codec
    images = kodak_sample(args.images)
    shares = list(range(3 * len(postfilter.NEIGHBOURS) + 3, postfilter.FEATURES - 1))
    f8_columns = [c for c in range(postfilter.FEATURES) if c not in shares]
    for path in images:
        original = np.asarray(Image.open(path).convert("RGB")).astype(np.float64)
        height, width = original.shape[:2]
        x = _to_tensor(original.astype(np.uint8), codec.config.multiple)
        for level in (int(v) for v in args.levels.split(",")):
            stage_images: list = []
            codec.analyse(x, codec.num_stages, level, stage_images)
            line = f"{path.stem} level {level}"
            for index, images_of_stage in enumerate(stage_images):
                inputs = _filter_inputs(images_of_stage, height, width)
                full = np.concatenate([block for _, block in postfilter._blocks(inputs)], axis=0)
                cnn_share = inputs.reconstruction - inputs.estimate
                gains = [
                    oracle_gain(full[:, f8_columns], inputs.reconstruction, original),
                    oracle_gain(full, inputs.reconstruction, original),
                    oracle_gain(np.concatenate([full, neighbour_differences(cnn_share)], axis=1), inputs.reconstruction, original),
                ]
                line += f" | stage {index + 1}: f8 {gains[0]:+.3f} f9 {gains[1]:+.3f} f9+ {gains[2]:+.3f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
