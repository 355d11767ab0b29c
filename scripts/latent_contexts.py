"""How many latent bits would richer coding contexts save? (issue 3, the study behind format 4)

Format 3's coder picked each symbol's table from what is known at the same
latent position only: how many of the block's stronger channels are nonzero,
and what the previous stage sent there (``shipped contexts`` below: the rule
the models shipped with when this was measured). It decoded a whole channel in
one vectorized call, so a symbol's spatial neighbours in its own channel were
unknown. This script measures, in ideal bits (−log2 of table probabilities,
escapes at 16 bits), what three alternatives save:

- ``mix``: the nonzero count also looks at the 4 neighbouring positions'
  stronger channels (known: decoded in earlier calls), 2:1 weight on its own;
- ``mix+checker``: as ``mix``, and each channel is decoded in two calls, a
  checkerboard half first; the second half's table also depends on
  Σ|symbol| of its 4 first-half neighbours in the same channel (5 levels).
  This is what the coder does since format 4 (`bitstream.contexts`);
- ``merged``: the same information folded into one activity value per half
  (2·own + neighbours/2 + 4·Σ|neighbour symbols|, in the count buckets):
  64 contexts instead of ``mix+checker``'s 160, so fewer tables to ship.

Tables are fitted (as `codec.training.fitting` does: histogram per channel
and context plus a back-off to the channel's histogram) on symbols of
training photos and evaluated on Kodak; Kodak is never fitted on. The symbols
are those of the given shipped model, so distortion is unchanged: these are
pure rate differences at the same reconstructions. Rates from a real coder
would add table quantization and ANS overhead (both tiny against the shipped
coder's measured bytes).

Usage (from the repository root):
    python scripts/latent_contexts.py --kodak ../shared/data/kodak --train ../shared/data/train-photos \
        --train-limit 80 --qualities 0,2,4 --out results/codec-study/latent-contexts.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cdcodec.bitstream import contexts
from cdcodec.codec.pipeline import _to_tensor, get_model

BACKOFF = 4.0  # as codec.training.fitting.BACKOFF
MAX_TABLE_WIDTH = 2048  # as codec.training.fitting.MAX_TABLE_WIDTH
#: The context rules compared, the shipped one first (see the module docstring).
VARIANTS = ("shipped contexts", "mix", "mix+checker", "merged")
SHIPPED = VARIANTS[0]


def variants(s: np.ndarray, prior: np.ndarray) -> dict[str, tuple[np.ndarray, int]]:
    """Context id (C, h·w) and context count of each variant, for symbols s (C, h, w)."""
    c, h, w = s.shape
    nonzero = (s != 0).astype(np.int64)
    so_far = np.concatenate([np.zeros((1, h, w), np.int64), np.cumsum(nonzero, axis=0)[:-1]])
    around = contexts.neighbour_sum(so_far, replicate_edge=True)  # stronger channels: known everywhere
    mix = contexts.count_bucket((2 * so_far + (around + 1) // 2 + 2) // 4)
    rows, cols = np.mgrid[0:h, 0:w]
    second = ((rows + cols) % 2 == 1)[None]
    # Outside the grid counts 0: repeating the edge would hand a border position its own value.
    magnitude = contexts.neighbour_sum(np.abs(s), replicate_edge=False)
    level = np.where(second, 1 + np.searchsorted([1, 2, 4], magnitude, side="right"), 0)
    merged = np.where(second, 8 + contexts.count_bucket((2 * so_far + (around + 1) // 2 + 4 * magnitude + 2) // 4), mix)
    p = prior.reshape(c, h, w)
    rules = [
        (contexts.count_bucket(so_far) * 4 + p, 32),
        (mix * 4 + p, 32),
        ((mix * 5 + level) * 4 + p, 160),
        (merged * 4 + p, 64),
    ]
    out = dict(zip(VARIANTS, rules))
    return {name: (ids.reshape(c, -1), n) for name, (ids, n) in out.items()}


def symbols_of(codec, paths: list[Path], qualities: list[int]) -> list[dict]:
    """Per image: its pixel count and, per (quality, stage), symbols (C, h, w) and prior levels (C, h·w)."""
    out = []
    for path in paths:
        pixels = np.asarray(Image.open(path).convert("RGB"))
        x = _to_tensor(pixels, codec.config.multiple)
        entry = {"pixels": pixels.shape[0] * pixels.shape[1]}
        for quality in qualities:
            previous = None
            for k, q in enumerate(codec.analyse(x, codec.num_stages, quality)):
                s = q[0].to(torch.int32).numpy().astype(np.int64)
                if previous is None:
                    prior = contexts.stage_prior(None, (0, 0), s.shape[1:], s.shape[0])
                else:
                    prior = contexts.stage_prior(previous.reshape(previous.shape[0], -1), previous.shape[1:], s.shape[1:], s.shape[0])
                entry[quality, k] = (s, np.asarray(prior))
                previous = s
        out.append(entry)
        print(f"  {path.name}", file=sys.stderr, flush=True)
    return out


def ideal_bits(train: list[tuple[np.ndarray, dict]], test: list[tuple[np.ndarray, dict]]) -> dict[str, float]:
    """Bits of the test symbols under tables fitted on the training symbols, per variant."""
    fit = np.concatenate([s for s, _ in train], axis=1)
    centre = np.median(fit, axis=1).astype(np.int64)
    lows = np.maximum(fit.min(axis=1), centre - MAX_TABLE_WIDTH // 2)
    sizes = np.minimum(fit.max(axis=1), centre + MAX_TABLE_WIDTH // 2 - 1) - lows + 1
    width = int(sizes.max()) + 1  # the last column is the escape
    result = {}
    for name, (_, count) in train[0][1].items():
        ids = np.concatenate([v[name][0] for _, v in train], axis=1)
        bits = 0.0
        for c in range(fit.shape[0]):
            index = fit[c] - lows[c]
            index = np.where((index < 0) | (index >= sizes[c]), sizes[c], index)
            hist = np.bincount(ids[c] * width + index, minlength=count * width).reshape(count, width).astype(np.float64)
            marginal = hist.sum(axis=0)
            hist += BACKOFF * marginal / max(marginal.sum(), 1.0)
            hist[:, : sizes[c] + 1] += 1e-3
            hist[:, sizes[c]] += 1.0  # the escape's pseudo-observation
            hist[:, sizes[c] + 1 :] = 0.0
            log_p = np.log2(np.maximum(hist / hist.sum(axis=1, keepdims=True), 1e-300))
            for s, v in test:
                value = s[c] - lows[c]
                escaped = (value < 0) | (value >= sizes[c])
                bits += 16.0 * escaped.sum() - log_p[v[name][0][c], np.where(escaped, sizes[c], value)].sum()
        result[name] = bits
    return result


def study_arguments(description: str, train_limit: int, threads: int) -> argparse.ArgumentParser:
    """The command line shared with scripts/entropy_headroom.py."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--kodak", type=Path, required=True)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--train-limit", type=int, default=train_limit, help="evenly spaced training photos to fit on")
    parser.add_argument("--model", default=None, help="shipped model id or weights file (default model when omitted)")
    parser.add_argument("--qualities", default="0,2,4")
    parser.add_argument("--threads", type=int, default=threads)
    parser.add_argument("--out", type=Path, required=True)
    return parser


def study_images(args: argparse.Namespace) -> tuple[list[Path], list[Path]]:
    """(training photos, Kodak images) as the arguments select them."""
    kodak = sorted(args.kodak.glob("*.png"))
    photos = sorted(p for p in args.train.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    photos = photos[:: max(1, len(photos) // args.train_limit)][: args.train_limit]
    print(f"symbols of {len(photos)} training photos and {len(kodak)} Kodak images", file=sys.stderr)
    return photos, kodak


def main() -> None:
    args = study_arguments(__doc__.splitlines()[0], train_limit=80, threads=1).parse_args()
    torch.set_num_threads(args.threads)
    started = time.time()
    codec = get_model(args.model).codec
    qualities = [int(q) for q in args.qualities.split(",")]
    photos, kodak = study_images(args)
    train, test = symbols_of(codec, photos, qualities), symbols_of(codec, kodak, qualities)
    kodak_pixels = sum(e["pixels"] for e in test)
    lines = [
        f"Made by `python {' '.join(sys.argv)}` (model {codec.config.model_id}),",
        f"{time.strftime('%Y-%m-%d')}, {time.time() - started:.0f} s. Kodak latent rate in bits per pixel (ideal bits of the",
        "symbols; tables fitted on the training photos) and the change against the shipped contexts.",
        "",
        "| quality | stage | " + " | ".join(VARIANTS) + " |",
        "|---" * 6 + "|",
    ]
    totals: dict[int, dict[str, float]] = {}
    for quality in qualities:
        for k in range(codec.num_stages):
            pack = lambda entries: [(e[quality, k][0].reshape(e[quality, k][0].shape[0], -1), variants(*e[quality, k])) for e in entries]
            bits = ideal_bits(pack(train), pack(test))
            for name, b in bits.items():
                totals.setdefault(quality, {}).setdefault(name, 0.0)
                totals[quality][name] += b
            cells = [f"{bits[SHIPPED] / kodak_pixels:.4f}"] + [
                f"{b / kodak_pixels:.4f} ({100 * (b / bits[SHIPPED] - 1):+.1f}%)" for name, b in bits.items() if name != SHIPPED
            ]
            lines.append(f"| {quality} | {k + 1} | " + " | ".join(cells) + " |")
            print(lines[-1], file=sys.stderr, flush=True)
    lines += ["", "All stages together (the rate of a full-cascade file):", ""]
    for quality, bits in totals.items():
        lines.append(
            f"- quality {quality}: {bits[SHIPPED] / kodak_pixels:.4f} bpp shipped; "
            + ", ".join(f"{name} {100 * (b / bits[SHIPPED] - 1):+.2f}%" for name, b in bits.items() if name != SHIPPED)
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
