"""Would symbol tables fitted on the search's symbols code searched files in fewer bits?

The shipped tables were fitted (`cdcodec refit-tables`) on the symbols of
plainly rounded training crops, without the post-filter in the loop; since
session 25 the encoder sends searched symbols (`codec/symbol_search.py`),
whose statistics differ. This encodes CROPS training photos (every k-th of
`train-photos`, its centre SIDE × SIDE) at quality levels 0, 2 and 4 with
the real encoder twice, searched (4 rounds) and plainly rounded, fits every
(stage, level) table set from each arm's symbols (`training.fitting.fit_tables`,
the function `refit-tables` uses), then encodes the 4-image Kodak sample
(searched, the encoder's defaults) and prints the ideal bits of its symbols
under the shipped tables and under both refits. The rounded arm is the
control: it separates the effect of the symbols' statistics from that of
fitting on fewer, larger crops than `refit-tables` does. Ideal bits, not
file bytes: the question is only which tables fit the symbols better.

    python scripts/searched_tables_probe.py 48 256 model
    python scripts/searched_tables_probe.py 48 256 model cdc-msssim-4

(`cdc-msssim-4` retired in session 36: pass its weights file, fetched as
`trained/manifest.json`'s "retired" entry says, in place of the id.)

Arguments: CROPS, SIDE, the search's distortion (`model`, the model's own,
or an MS-SSIM share such as 0 for `--tune psnr`), and optionally a model
(default: the default model). One thread; about 45 minutes per model.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
from PIL import Image

from cdcodec.bitstream import unpack
from cdcodec.codec import pipeline as P
from cdcodec.codec.model import stage_prior
from cdcodec.codec.training.data import list_images
from cdcodec.codec.training.fitting import fit_tables

from kodak_sample import SHARED_DATA, kodak_sample

TRAIN_PHOTOS = SHARED_DATA / "train-photos"
LEVELS = (0, 2, 4)


def file_symbols(codec, data: bytes) -> list[tuple[np.ndarray, np.ndarray, tuple[int, int]]]:
    """(symbols, prior, grid) of every stage of a lossy .cdc file, read back from its bytes by the decoder's reader."""
    parsed = unpack(data)
    arrays, symbols, _ = P.read_latent_stages(parsed, codec, parsed.stages_present)
    grids = [tuple(q.shape[-2:]) for q in symbols]
    priors = [stage_prior(symbols[k - 1] if k else None, grids[k], q.shape[1]) for k, q in enumerate(symbols)]
    return list(zip(arrays, priors, grids))


def main() -> None:
    crops, side = int(sys.argv[1]), int(sys.argv[2])
    share = None if sys.argv[3] == "model" else float(sys.argv[3])
    model = sys.argv[4] if len(sys.argv) > 4 else None
    torch.set_num_threads(1)
    loaded = P.get_model(model)
    codec = loaded.codec
    photos = list_images(TRAIN_PHOTOS)
    photos = photos[:: max(1, len(photos) // crops)][:crops]
    arms = {0: {}, 4: {}}  # search rounds -> (stage, level) -> [(symbols, prior, grid)]
    start = time.time()
    for n, path in enumerate(photos):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        h, w = rgb.shape[:2]
        top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
        crop = np.ascontiguousarray(rgb[top : top + side, left : left + side])
        for level in LEVELS:
            for rounds, arm in arms.items():
                data = P.encode(crop, quality=level, model=loaded, search_rounds=rounds, search_ms_ssim_share=share)
                for k, item in enumerate(file_symbols(codec, data)):
                    arm.setdefault((k, level), []).append(item)
        print(n, path.name, round(time.time() - start), flush=True)
    fitted = {
        rounds: {key: fit_tables(*(list(column) for column in zip(*items))) for key, items in arm.items()}
        for rounds, arm in arms.items()
    }
    kodak = {}
    for path in kodak_sample(4):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        for level in LEVELS:
            data = P.encode(rgb, quality=level, model=loaded, search_ms_ssim_share=share)
            for k, item in enumerate(file_symbols(codec, data)):
                kodak.setdefault((k, level), []).append(item)
        print(path.name, round(time.time() - start), flush=True)
    rows = []
    for key in sorted(kodak):
        shipped = sum(codec.tables_for(*key).ideal_bits(*item) for item in kodak[key])
        rounded = sum(fitted[0][key].ideal_bits(*item) for item in kodak[key])
        searched = sum(fitted[4][key].ideal_bits(*item) for item in kodak[key])
        rows.append((key, shipped, rounded, searched))
        print(f"stage {key[0] + 1} level {key[1]}: shipped {shipped:.0f} bits, refit on rounded "
              f"{100 * (rounded / shipped - 1):+.2f}%, refit on searched {100 * (searched / shipped - 1):+.2f}%")
    for level in LEVELS:
        totals = [sum(row[i] for row in rows if row[0][1] == level) for i in (1, 2, 3)]
        print(f"level {level} all stages: refit on rounded {100 * (totals[1] / totals[0] - 1):+.2f}%, "
              f"refit on searched {100 * (totals[2] / totals[0] - 1):+.2f}%")


if __name__ == "__main__":
    main()
