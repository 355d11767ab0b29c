"""How much could the latent coder still save? (issue 3: is the AVIF gap in the coder or in the transforms?)

The coder of formats 4-6 (`bitstream.entropy`, the contexts of `bitstream.contexts`)
codes each symbol with a fixed integer table picked by a context. This script
measures, in ideal bits (−log2 of probabilities; escapes at 16 bits) of the
given model's symbols on Kodak, so at unchanged reconstructions, two kinds of
headroom:

1. Tables that adapt to each image, with the shipped contexts and tables:

   - ``adaptive W``: every table row starts as a Dirichlet prior shaped like the
     shipped row, worth W observations, and learns the image's symbols as they
     are decoded: what a symbol-by-symbol adaptive coder would spend. The code
     length of a Dirichlet-multinomial sequence does not depend on its order,
     so it is computed exactly from each row's counts.
   - ``oracle``: every row's own empirical distribution on the image, sent for
     free: a lower bound that no per-image table scheme reaches.

2. Richer contexts, tables refit on training photos and evaluated on Kodak
   (as `scripts/latent_contexts.py` does; ``shipped`` is the coder's rule refit
   the same way, so the columns compare rules, not fits):

   - ``prev channel``: × 3 levels of |symbol of channel c−1 at the same position|
     (0, 1, 2+): the neighbouring, similarly strong transform component;
   - ``quarters``: the first checkerboard half split into two quarter-grids; the
     second quarter's table also depends on the magnitudes of its 4 diagonal
     neighbours in the first quarter (4 levels), as the second half's does on
     its direct neighbours;
   - ``magnitudes``: the activity built from Σ|symbol| of the stronger channels
     instead of their nonzero count;
   - ``quarters + prev channel``.

It measures context coding only, so it needs tables without predicted
channels (format 7 codes a few channels by prediction instead, the outcome of
this study): the committed result used cdc-mix-2's format-6 tables, from git:

    git show c5de4df:trained/cdc-mix-2-a7462fe3.safetensors > /tmp/cdc-mix-2-format6.safetensors
    python scripts/entropy_headroom.py --kodak ../shared/data/kodak --train ../shared/data/train-photos \\
        --train-limit 40 --qualities 0,2,4 --model /tmp/cdc-mix-2-format6.safetensors \\
        --out results/codec-study/entropy-headroom.md
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.special import gammaln

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latent_contexts import ideal_bits, study_arguments, study_images, symbols_of  # noqa: E402

from cdcodec.bitstream import contexts  # noqa: E402
from cdcodec.bitstream.entropy import _to_indices  # noqa: E402
from cdcodec.codec.pipeline import get_model  # noqa: E402

PRIOR_WEIGHTS = (32, 128, 512, 2048)
ADAPTIVE = tuple(f"adaptive {w}" for w in PRIOR_WEIGHTS)
CONTEXT_RULES = ("shipped", "prev channel", "quarters", "magnitudes", "quarters + prev channel")


def adaptive_bits(symbols: np.ndarray, prior: np.ndarray, tables) -> dict[str, float]:
    """Bits of one image's (C, h, w) symbols under the shipped tables, adaptive tables and the oracle."""
    c, h, w = symbols.shape
    flat = symbols.reshape(c, -1).astype(np.int64)
    ids = contexts.context_ids(flat, prior, (h, w)) if tables.contexts > 1 else np.zeros_like(flat)
    rows = (np.arange(c)[:, None] * tables.contexts + ids).reshape(-1)
    values = flat.reshape(-1)
    order = np.argsort(rows, kind="stable")
    rows, values = rows[order], values[order]
    starts = np.flatnonzero(np.r_[True, np.diff(rows) != 0])
    bits = dict.fromkeys(("shipped",) + ADAPTIVE + ("oracle",), 0.0)
    for segment_rows, segment in zip(np.split(rows, starts[1:]), np.split(values, starts[1:])):
        r = int(segment_rows[0])
        idx, escaped = _to_indices(segment, int(tables.offsets[r]), int(tables.sizes[r]))
        raw = 16.0 * int(escaped.sum())
        p = tables.probabilities(r)
        n = np.bincount(idx, minlength=p.shape[0]).astype(np.float64)
        seen = n > 0
        bits["shipped"] += raw - float(np.log2(p[idx]).sum())
        bits["oracle"] += raw - float((n[seen] * np.log2(n[seen] / n.sum())).sum())
        for weight, name in zip(PRIOR_WEIGHTS, ADAPTIVE):
            alpha = weight * p[seen]
            log_p = gammaln(weight) - gammaln(weight + n.sum()) + float((gammaln(alpha + n[seen]) - gammaln(alpha)).sum())
            bits[name] += raw - log_p / np.log(2)
    return bits


def _diagonal_sum(values: np.ndarray) -> np.ndarray:
    """Σ of the 4 diagonal neighbours over the last two axes (outside the grid counts 0)."""
    total = np.zeros_like(values)
    total[..., 1:, 1:] += values[..., :-1, :-1]
    total[..., :-1, :-1] += values[..., 1:, 1:]
    total[..., 1:, :-1] += values[..., :-1, 1:]
    total[..., :-1, 1:] += values[..., 1:, :-1]
    return total


def context_rules(s: np.ndarray, prior: np.ndarray) -> dict[str, tuple[np.ndarray, int]]:
    """Context id (C, h·w) and context count of each rule in CONTEXT_RULES, for symbols s (C, h, w)."""
    c, h, w = s.shape
    magnitude = np.abs(s)
    so_far = np.concatenate([np.zeros((1, h, w), np.int64), np.cumsum(s != 0, axis=0)[:-1]])
    activity = contexts.count_bucket((2 * so_far + (contexts.neighbour_sum(so_far, True) + 1) // 2 + 2) // 4)
    rows, cols = np.mgrid[0:h, 0:w]
    second = ((rows + cols) % 2 == 1)[None]
    second_quarter = ((rows % 2 == 1) & (cols % 2 == 1))[None]
    first_quarter = ((rows % 2 == 0) & (cols % 2 == 0))[None]
    bucket = lambda v: np.searchsorted(contexts.MAGNITUDE_THRESHOLDS, v, side="right")  # noqa: E731
    half_level = np.where(second, 1 + bucket(contexts.neighbour_sum(magnitude * ~second, False)), 0)
    quarter_level = np.where(
        second, 5 + bucket(contexts.neighbour_sum(magnitude * ~second, False)),
        np.where(second_quarter, 1 + bucket(_diagonal_sum(magnitude * first_quarter)), 0),
    )
    previous_channel = np.concatenate([np.zeros((1, h, w), np.int64), np.minimum(magnitude[:-1], 2)])
    mag_so_far = np.concatenate([np.zeros((1, h, w), np.int64), np.cumsum(magnitude, axis=0)[:-1]])
    mag_activity = contexts.count_bucket((2 * mag_so_far + (contexts.neighbour_sum(mag_so_far, True) + 1) // 2 + 2) // 4)
    p = prior.reshape(c, h, w)
    shipped = (activity * 5 + half_level) * 4 + p
    quarters = (activity * 9 + quarter_level) * 4 + p
    rules = {
        "shipped": (shipped, 160),
        "prev channel": (shipped * 3 + previous_channel, 480),
        "quarters": (quarters, 288),
        "magnitudes": ((mag_activity * 5 + half_level) * 4 + p, 160),
        "quarters + prev channel": (quarters * 3 + previous_channel, 864),
    }
    return {name: (ids.reshape(c, -1), count) for name, (ids, count) in rules.items()}


def percent(bits: dict[str, float], name: str, reference: str) -> str:
    return f"{100 * (bits[name] / bits[reference] - 1):+.1f}%"


def main() -> None:
    parser = study_arguments(__doc__.splitlines()[0], train_limit=40, threads=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.time()
    codec = get_model(args.model).codec
    if any(t.predicted for per_quality in codec.tables for t in per_quality.values()):
        parser.error("this model's tables predict some channels; give a model with context tables only (see the docstring)")
    qualities = [int(q) for q in args.qualities.split(",")]
    photos, kodak = study_images(args)
    train, test = symbols_of(codec, photos, qualities), symbols_of(codec, kodak, qualities)
    pixels = sum(e["pixels"] for e in test)

    adaptive_rows, context_rows = [], []
    adaptive_total: dict[int, dict[str, float]] = {}
    context_total: dict[int, dict[str, float]] = {}
    for quality in qualities:
        for k in range(codec.num_stages):
            tables = codec.tables_for(k, quality)
            bits = dict.fromkeys(("shipped",) + ADAPTIVE + ("oracle",), 0.0)
            for entry in test:
                for name, b in adaptive_bits(*entry[quality, k], tables).items():
                    bits[name] += b
            for name, b in bits.items():
                adaptive_total.setdefault(quality, dict.fromkeys(bits, 0.0))[name] += b
            adaptive_rows.append(
                f"| {quality} | {k + 1} | {bits['shipped'] / pixels:.4f} | "
                + " | ".join(percent(bits, name, "shipped") for name in ADAPTIVE + ("oracle",)) + " |"
            )
            pack = lambda entries: [  # noqa: E731
                (e[quality, k][0].reshape(e[quality, k][0].shape[0], -1), context_rules(*e[quality, k])) for e in entries
            ]
            bits = ideal_bits(pack(train), pack(test))
            for name, b in bits.items():
                context_total.setdefault(quality, dict.fromkeys(bits, 0.0))[name] += b
            context_rows.append(
                f"| {quality} | {k + 1} | {bits['shipped'] / pixels:.4f} | "
                + " | ".join(percent(bits, name, "shipped") for name in CONTEXT_RULES[1:]) + " |"
            )
            print(adaptive_rows[-1], context_rows[-1], file=sys.stderr, flush=True)

    def totals(table: dict[int, dict[str, float]], names: tuple[str, ...]) -> list[str]:
        return [
            f"| {quality} | all | {bits['shipped'] / pixels:.4f} | " + " | ".join(percent(bits, n, "shipped") for n in names) + " |"
            for quality, bits in table.items()
        ]

    lines = [
        f"Made by `python {' '.join(sys.argv)}` (model {codec.config.model_id}),",
        f"{time.strftime('%Y-%m-%d')}, {time.time() - started:.0f} s. Ideal bits of the Kodak symbols, in bits per pixel",
        "for the reference column and as the change against it for the others; `all` is a full-cascade file.",
        "",
        "Per-image adaptive tables (shipped contexts and tables; reference: the shipped tables, fixed):",
        "",
        "| quality | stage | shipped (bpp) | " + " | ".join(ADAPTIVE) + " | oracle |",
        "|---" * (4 + len(ADAPTIVE)) + "|",
        *adaptive_rows,
        *totals(adaptive_total, ADAPTIVE + ("oracle",)),
        "",
        f"Richer contexts (tables refit on {len(photos)} training photos; reference: the shipped rule refit the same way):",
        "",
        "| quality | stage | shipped rule (bpp) | " + " | ".join(CONTEXT_RULES[1:]) + " |",
        "|---" * (2 + len(CONTEXT_RULES)) + "|",
        *context_rows,
        *totals(context_total, CONTEXT_RULES[1:]),
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
