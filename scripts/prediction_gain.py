"""What format 7's predicted channels save on Kodak, apart from refitting the tables (issue 3).

Format 7 refit every shipped model's tables (`cdcodec refit-tables`), and the
refit both draws fresh training crops and adds predicted channels
(`bitstream/prediction.py`). This separates the two on stage 1 of the default
model: the stage-1 latent payload bytes of the 24 Kodak images (real coder
output, no container) at quality levels 0, 2 and 4 with

- the format-6 tables (the model file before the refit, from git),
- the refit tables with their predicted channels removed (context coding only),
- the refit tables as shipped.

The network is the same in all three, so the symbols are too.

    git show c5de4df:trained/cdc-mix-2-a7462fe3.safetensors > /tmp/cdc-mix-2-format6.safetensors
    git show 2676151:trained/cdc-mix-2-ef180138.safetensors > /tmp/cdc-mix-2.safetensors
    python scripts/prediction_gain.py /tmp/cdc-mix-2-format6.safetensors /tmp/cdc-mix-2.safetensors ../shared/data/kodak

(`cdc-mix-2`, the default when this was measured, was retired in session 23;
both files come from git.)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cdcodec.bitstream import SymbolTables, encode_latent
from cdcodec.codec.model import stage_prior, symbols_to_array
from cdcodec.codec.pipeline import _to_tensor, get_model

QUALITIES = (0, 2, 4)
VARIANTS = ("format-6 tables", "refit, no prediction", "refit, prediction")


def main() -> None:
    torch.set_num_threads(1)
    old = get_model(sys.argv[1]).codec
    new = get_model(sys.argv[2]).codec
    total = {}
    for path in sorted(Path(sys.argv[3]).glob("*.png")):
        x = _to_tensor(np.asarray(Image.open(path).convert("RGB")), new.config.multiple)
        for quality in QUALITIES:
            symbols = new.analyse(x, 1, quality)[0]
            array, grid = symbols_to_array(symbols), tuple(symbols.shape[-2:])
            prior = stage_prior(None, grid, symbols.shape[1])
            refit = new.tables_for(0, quality)
            context_only = SymbolTables(refit.offsets, refit.sizes, refit.pmfs, refit.contexts)
            for name, tables in zip(VARIANTS, (old.tables_for(0, quality), context_only, refit)):
                total[quality, name] = total.get((quality, name), 0) + len(encode_latent(array, tables, prior, grid))
    print("| quality level | " + " | ".join(VARIANTS) + " |")
    print("|---" * (1 + len(VARIANTS)) + "|")
    for quality in QUALITIES:
        base = total[quality, VARIANTS[0]]
        cells = [f"{total[quality, n]} B ({100 * (total[quality, n] / base - 1):+.2f}%)" for n in VARIANTS]
        print(f"| {quality} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
