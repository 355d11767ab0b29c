"""Tempered tables on one image, stage by stage: coded bytes and CPU time (results/codec-study/tempered-tables.md).

Encodes the image once (without tempering), reads each latent stage's symbols
back from the file, and codes them again three ways: as shipped, tempered
(`entropy.choose_temperatures`), and as shipped pushed a second time onto the
same coder (what the symbols cost once the coder's state is no longer empty;
the difference from the first is the run of first-entry symbols the decoder
reads last, which an empty state codes for nothing). Also the ideal bits under
the shipped rows, and CPU seconds to choose, code and decode (each call builds
its own row models, as in a fresh process).

    python scripts/temper_probe.py ../shared/data/kodak/kodim07.png --quality 0 --effort 0
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

from cdcodec.bitstream import ans, decode_latent, encode_latent, unpack
from cdcodec.bitstream.entropy import _channel_rows, _check_prior, _coded_values, _RowModels, _to_indices, choose_temperatures
from cdcodec.codec.geometry import padded_size
from cdcodec.codec.model import stage_prior
from cdcodec.codec.pipeline import encode, get_model, read_latent_stages


def pushed_twice_bytes(tables, symbols, prior, grid) -> float:
    """Bytes the second of two pushes of the context-coded symbols adds (predicted channels left out)."""
    coded = _coded_values(tables, symbols, grid)
    groups = [(c, rows) for c, rows in _channel_rows(tables, coded, _check_prior(prior, tables.channels, symbols.shape[1]), grid) if rows]
    coder = ans.new_encoder()
    models = _RowModels(tables)
    sizes = []
    for _ in range(2):
        for c, rows in reversed(groups):
            for r, positions in reversed(rows):
                coder.encode_reverse(_to_indices(coded[c][positions], int(tables.offsets[r]), int(tables.sizes[r]))[0], models(r))
        sizes.append(coder.num_bits() / 8)
    return sizes[1] - sizes[0]


def timed(work):
    start = time.process_time()
    result = work()
    return result, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("--quality", type=int, default=None)
    parser.add_argument("--effort", type=int, default=None, help="rounds of the encoder's search (default: its default)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    pixels = np.asarray(Image.open(args.image).convert("RGB"))
    parsed = unpack(encode(pixels, quality=args.quality, search_rounds=args.effort, temper=False))
    codec = get_model().codec
    arrays, symbols, _ = read_latent_stages(parsed, codec, len(codec.stages))
    ph, pw = padded_size(parsed.header.height, parsed.header.width, codec.config.multiple)
    print(f"{args.image}, quality level {parsed.header.stages[0].param}, effort {args.effort}; bytes of the coded latents, CPU seconds")
    print("| stage | ideal (shipped rows) | coded | context-coded pushed again | tempered | change | choose s | decode s plain / tempered |")
    print("|---|---|---|---|---|---|---|---|")
    for index, stage in enumerate(codec.stages):
        grid = (ph // stage.config.block, pw // stage.config.block)
        prior = stage_prior(symbols[index - 1] if index else None, grid, stage.latent_channels)
        tables = codec.tables_for(index, parsed.header.stages[index].param)
        values = arrays[index]
        plain = encode_latent(values, tables, prior, grid)
        decoded, plain_s = timed(lambda: decode_latent(plain, tables, values.shape[1], prior, grid))
        chosen, choose_s = timed(lambda: choose_temperatures(tables, values, prior, grid))
        tempered = encode_latent(values, tables, prior, grid, chosen)
        again, tempered_s = timed(lambda: decode_latent(tempered, tables, values.shape[1], prior, grid, tempered=True))
        assert np.array_equal(decoded, values) and np.array_equal(again, values)
        print(f"| {index + 1} | {tables.ideal_bits(values, prior, grid) / 8:.0f} | {len(plain)} | {pushed_twice_bytes(tables, values, prior, grid):.0f} | "
              f"{len(tempered)} | {100 * (len(tempered) / len(plain) - 1):+.2f}% | {choose_s:.2f} | {plain_s:.2f} / {tempered_s:.2f} |")


if __name__ == "__main__":
    main()
