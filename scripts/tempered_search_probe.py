"""Would the symbol search do better pricing symbols under tempered rows? Two arms on the Kodak sample.

The encoder's search (`codec/symbol_search.py`) ranks its moves and accepts
them by their bits under the stage's shipped rows (`entropy.move_bits`,
`SymbolTables.ideal_bits`), but the file then codes the searched latent under
rows tempered to it (`entropy.choose_temperatures`), which price symbols
differently: mostly sharper, so a zero costs less there and a large value more.
With `--tempered` the search prices both under the rows tempered to the
symbols it holds at that moment (chosen anew at every pricing, as the encoder
would choose them for those symbols; the choices' own bits, a fraction of a
bit per channel, left out). Without it the search is the shipped one. Either
way the encoder tempers the searched symbols as always and every rate is the
file's bytes. One run encodes the 4-image Kodak sample (`kodak_sample.py`) at
the given quality levels, decodes every stage prefix and writes the points;
`--compare` prints two runs side by side with the BD-rate of the second
against the first (`paired_points.py`). Each run takes one core:

    OMP_NUM_THREADS=1 taskset -c 0 python scripts/tempered_search_probe.py --out /tmp/shipped.json
    OMP_NUM_THREADS=1 taskset -c 1 python scripts/tempered_search_probe.py --tempered --out /tmp/tempered.json
    python scripts/tempered_search_probe.py --compare /tmp/shipped.json /tmp/tempered.json

The pricing reaches the search by wrapping what `pipeline` calls: a
measurement knob, not an encoder option.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cdcodec.bitstream.entropy import TABLE_TOTAL, SymbolTables, choose_temperatures
from cdcodec.bitstream.temper import NEUTRAL, temper_rows
from cdcodec.codec import pipeline
from cdcodec.codec.allocator import keep_freed_memory
from cdcodec.codec.pipeline import TUNINGS, encode, get_model

from kodak_sample import kodak_sample
from paired_points import add_prefix_points, print_compared_runs


def tempered_to(tables: SymbolTables, symbols: np.ndarray, prior, grid) -> SymbolTables:
    """`tables` with every context-coded channel's rows tempered as `choose_temperatures` picks for `symbols`."""
    eighths = choose_temperatures(tables, symbols, prior, grid)
    pmfs = tables.pmfs.copy()
    for c in np.flatnonzero(eighths != NEUTRAL).tolist():
        rows = slice(c * tables.contexts, (c + 1) * tables.contexts)
        pmfs[rows] = temper_rows(tables.pmfs[rows], tables.sizes[rows], int(eighths[c]), TABLE_TOTAL)
    return SymbolTables(tables.offsets, tables.sizes, pmfs, tables.contexts, tables.predicted, tables.residuals, tables.sign_aligned)


def price_tempered() -> None:
    """Make the search's two prices (`pipeline._RateSearch`) those of the tempered rows."""
    shipped_move_bits, shipped_ideal_bits = pipeline.move_bits, SymbolTables.ideal_bits
    tempered: dict = {}  # the last (tables, symbols) priced: a round prices the same symbols several times

    def tables_for(tables, symbols, prior, grid):
        key = (id(tables), symbols.tobytes())
        if key not in tempered:
            tempered.clear()
            tempered[key] = tempered_to(tables, symbols, prior, grid)
        return tempered[key]

    def move_bits(tables, symbols, prior, grid, moves):
        return shipped_move_bits(tables_for(tables, symbols, prior, grid), symbols, prior, grid, moves)

    def ideal_bits(tables, symbols, prior=None, grid=None):
        return shipped_ideal_bits(tables_for(tables, symbols, prior, grid), symbols, prior, grid)

    pipeline.move_bits = move_bits
    SymbolTables.ideal_bits = ideal_bits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tempered", action="store_true", help="price the search's moves under tempered rows")
    parser.add_argument("--out", type=Path, help="JSON file for this run's points")
    parser.add_argument("--tune", choices=TUNINGS, default="model", help="as `cdcodec encode --tune`")
    parser.add_argument("--levels", default="0,2,4")
    parser.add_argument("--images", type=int, default=4, help="how many Kodak images (`kodak_sample`)")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BASE", "OTHER"), help="print two runs' points and BD-rates")
    args = parser.parse_args()
    if args.compare:
        print_compared_runs(args.compare, lambda run: f"tempered {run['tempered']}, tune {run['tune']}")
        return
    if args.out is None:
        parser.error("give --out (or --compare)")
    torch.set_num_threads(1)
    keep_freed_memory()  # as the `cdcodec` command does: a third less time
    if args.tempered:
        price_tempered()
    loaded = get_model(None)
    levels = [int(v) for v in args.levels.split(",")]
    points, seconds, encodes = {}, 0.0, 0
    for path in kodak_sample(args.images):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        for level in levels:
            start = time.perf_counter()
            data = encode(rgb, quality=level, model=loaded, tune=args.tune)
            seconds, encodes = seconds + time.perf_counter() - start, encodes + 1
            add_prefix_points(points, level, rgb, data, loaded)
        print(path.name, "done", flush=True)
    record = {"tempered": args.tempered, "tune": args.tune, "model": loaded.codec.config.model_id,
              "seconds per encode": seconds / encodes, "points": {f"{level} {stages}": p for (level, stages), p in points.items()}}
    args.out.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
