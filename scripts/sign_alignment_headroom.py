"""How much could the coder save on signs? (issue 3: the estimate behind sign-aligned tables)

The coding contexts (`bitstream.contexts`) read magnitudes only, so a nonzero
symbol's sign costs about one bit, and signs are about a fifth of a stage's
bits. In a smooth region the low-frequency coefficients of neighbouring blocks
share their sign. This script measures, in ideal bits of the default model's
Kodak symbols at unchanged reconstructions (tables fitted on training photos,
as `scripts/latent_contexts.py` does, without predicted channels):

- ``plain``: the shipped context rule, refit;
- ``second half``: each second-half symbol negated where the signs of its 4
  first-half neighbours in the same channel sum below zero, tables refit on
  those values (what `cdcodec refit-tables --align-signs` fits; the contexts
  do not change, since they read magnitudes);
- ``and quarters``: also the first half split into two quarter grids, the
  second oriented by its 4 diagonal neighbours in the first (a change of
  decoding order the coder does not make).

Fitting without predicted channels overstates what alignment adds to the
shipped coder: stage 1's block means (channels 0, 1, 4) are coded by
prediction, which already uses their neighbours' signs
(results/codec-study/sign-alignment.md measures the real bytes).

Usage (from the repository root; about 5 minutes on one core):
    python scripts/sign_alignment_headroom.py --kodak ../shared/data/kodak --train ../shared/data/train-photos \
        --train-limit 30 --cases 3:1,4:1,1:2,2:2 --out /tmp/sign-headroom.md
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latent_contexts import ideal_bits, study_arguments, study_images, symbols_of  # noqa: E402

from cdcodec.bitstream import contexts  # noqa: E402
from cdcodec.codec.pipeline import get_model  # noqa: E402

VARIANTS = ("plain", "second half", "and quarters")


def variants(s: np.ndarray, prior: np.ndarray) -> dict[str, tuple[np.ndarray, int]]:
    """The values each variant codes, (C, h·w), with the shipped rule's context ids (the same for all)."""
    c, h, w = s.shape
    ids = contexts.context_ids(s.reshape(c, -1), prior, (h, w))
    aligned = s * contexts.sign_orientation(s.reshape(c, -1), (h, w)).reshape(s.shape)
    rows, cols = np.mgrid[0:h, 0:w]
    first_quarter = ((rows % 2 == 0) & (cols % 2 == 0))[None]
    second_quarter = ((rows % 2 == 1) & (cols % 2 == 1))[None]
    signs = np.pad(np.sign(s * first_quarter), ((0, 0), (1, 1), (1, 1)))
    diagonal = signs[:, :-2, :-2] + signs[:, :-2, 2:] + signs[:, 2:, :-2] + signs[:, 2:, 2:]
    quarters = np.where(second_quarter & (diagonal < 0), -aligned, aligned)
    return {name: (v.reshape(c, -1), ids) for name, v in zip(VARIANTS, (s, aligned, quarters))}


def main() -> None:
    parser = study_arguments(__doc__.splitlines()[0], train_limit=30, threads=1)
    parser.add_argument("--cases", default="3:1,4:1,1:2,2:2", help="quality:stage pairs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cases = [tuple(int(v) for v in case.split(":")) for case in args.cases.split(",")]
    codec = get_model(args.model).codec
    photos, kodak = study_images(args)
    levels = sorted({q for q, _ in cases})
    train, test = symbols_of(codec, photos, levels), symbols_of(codec, kodak, levels)
    pixels = sum(e["pixels"] for e in test)
    lines = ["| quality | stage | nonzero symbols per pixel | plain (bpp) | second half | and quarters |", "|---|---|---|---|---|---|"]
    for quality, stage in cases:
        bits = {}
        for name in VARIANTS:
            pack = lambda entries: [  # noqa: E731
                (v[name][0], {name: (v[name][1], contexts.CONTEXTS)}) for v in (variants(*e[quality, stage - 1]) for e in entries)
            ]
            bits[name] = ideal_bits(pack(train), pack(test))[name]
        nonzero = sum(int(np.count_nonzero(e[quality, stage - 1][0])) for e in test)
        lines.append(
            f"| {quality} | {stage} | {nonzero / pixels:.4f} | {bits['plain'] / pixels:.4f} | "
            + " | ".join(f"{100 * (bits[n] / bits['plain'] - 1):+.2f}%" for n in VARIANTS[1:]) + " |"
        )
        print(lines[-1], file=sys.stderr, flush=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
