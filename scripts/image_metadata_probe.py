"""What image files carry besides one frame of 8-bit pixels, and what `cdcodec encode` makes of it.

For every image file under the given folders or files: its EXIF orientation,
its ICC profile's description, its frame count, and what `codec/images.py`
says on reading it (a `NotKeptWarning`, a refusal, or nothing). Files with
nothing to say are only counted. This is the check behind "no Kodak or
training photo carries an orientation or a profile" (results/bench/README.md,
session 65):

    python scripts/image_metadata_probe.py ../shared/data/kodak ../shared/data/train-photos \\
        "$(python -c 'import skimage, os; print(os.path.join(os.path.dirname(skimage.__file__), "data"))')"
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from cdcodec.codec.images import UnsupportedImageError, exif_orientation, load_image, profile_description


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args()
    for root in args.paths:
        files = sorted(p for p in (root.rglob("*") if root.is_dir() else [root]) if p.is_file())
        images = plain = 0
        for path in files:
            try:
                with Image.open(path) as img:
                    orientation = exif_orientation(img)
                    profile = profile_description(img.info.get("icc_profile")) or "-"
                    frames = getattr(img, "n_frames", 1)
            except (UnidentifiedImageError, OSError):
                continue  # not an image (a manifest, a licence)
            images += 1
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    load_image(path)
                    said = "; ".join(str(w.message) for w in caught) or "-"
                except UnsupportedImageError as exc:
                    said = f"refused: {exc}"
            if orientation == 1 and profile == "-" and frames == 1 and said == "-":
                plain += 1
                continue
            print(f"{path.name}: orientation {orientation}, profile {profile}, {frames} frame(s); cdcodec: {said}")
        print(f"{root}: {images} images, {plain} with no orientation, profile or further frames, and nothing said")


if __name__ == "__main__":
    main()
