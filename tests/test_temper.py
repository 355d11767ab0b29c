"""Tempered tables: exact integer rows, the cheapest choices, and latents that round-trip and shrink."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_entropy import aligned, context_tables, random_latent

from cdcodec.bitstream import decode_latent, encode_latent
from cdcodec.bitstream.entropy import TABLE_TOTAL, choose_temperatures
from cdcodec.bitstream.filters import NO_FILTER, join_latent_section, split_latent_section
from cdcodec.bitstream.temper import EIGHTHS, NEUTRAL, cheapest_choices, choice_bits, temper_entries, temper_rows


def test_tempered_rows_are_exact_integer_tables():
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 9, size=50)
    pmfs = np.zeros((50, 10), dtype=np.uint32)
    for i, size in enumerate(sizes):
        row = rng.integers(1, 2000, size=size + 1).astype(float)
        row = np.maximum(1, np.floor(row / row.sum() * (TABLE_TOTAL - size - 1)))
        row[np.argmax(row)] += TABLE_TOTAL - row.sum()
        pmfs[i, : size + 1] = row
    for eighths in EIGHTHS:
        out = temper_rows(pmfs, sizes, eighths, TABLE_TOTAL)
        used = np.arange(10) <= sizes[:, None]
        assert (out.sum(axis=1) == TABLE_TOTAL).all()
        assert (out[used] >= 1).all() and (out[~used] == 0).all()
    assert np.array_equal(temper_rows(pmfs, sizes, NEUTRAL, TABLE_TOTAL), pmfs)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=1, max_size=20), st.sampled_from(EIGHTHS), st.integers(0, 2**32 - 1))
def test_rows_laid_end_to_end_temper_as_each_row_alone(sizes, eighths, seed):
    """Tempering is row by row: a row's integers do not depend on the rows beside it,
    nor on how wide the table around it is, nor on being laid end to end."""
    rng = np.random.default_rng(seed)
    sizes = np.array(sizes)
    pmfs = np.zeros((len(sizes), 16), dtype=np.uint32)
    for i, size in enumerate(sizes):
        cuts = np.sort(rng.choice(np.arange(1, TABLE_TOTAL), size=size, replace=False))
        pmfs[i, : size + 1] = np.diff(np.concatenate([[0], cuts, [TABLE_TOTAL]]))  # size + 1 entries >= 1
    together = temper_rows(pmfs, sizes, eighths, TABLE_TOTAL)
    used = np.arange(16) <= sizes[:, None]
    assert np.array_equal(temper_entries(pmfs[used], sizes + 1, eighths, TABLE_TOTAL), together[used])
    for i, size in enumerate(sizes):
        alone = temper_rows(pmfs[i : i + 1, : size + 1], sizes[i : i + 1], eighths, TABLE_TOTAL)[0]
        assert np.array_equal(alone, together[i, : size + 1])


def test_temperature_above_one_sharpens_and_below_flattens():
    row = np.array([[1000, 60000, 4535, 1]], dtype=np.uint32)
    sizes = np.array([3])
    sharp, flat = temper_rows(row, sizes, 12, TABLE_TOTAL)[0], temper_rows(row, sizes, 5, TABLE_TOTAL)[0]
    assert sharp[1] > row[0, 1] > flat[1]
    assert sharp[0] < row[0, 0] < flat[0]


def test_tempered_rows_are_pinned_to_these_integers():
    """Encoder and decoder must form the same rows on every machine and in every
    release: a change here changes what every tempered file decodes to."""
    row = np.array([[7, 300, 65000, 228, 1]], dtype=np.uint32)
    sizes = np.array([4])
    got = {e: temper_rows(row, sizes, e, TABLE_TOTAL)[0].tolist() for e in (5, 12, 16)}
    assert got == {5: [204, 2129, 61349, 1793, 61], 12: [1, 21, 65498, 15, 1], 16: [1, 2, 65530, 2, 1]}


def test_unknown_temperature_is_refused():
    with pytest.raises(ValueError, match="temperature"):
        temper_rows(np.array([[1, TABLE_TOTAL - 1]]), np.array([1]), 3, TABLE_TOTAL)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_cheapest_choices_is_the_best_of_every_sequence(n, seed):
    bits = np.random.default_rng(seed).random((n, len(EIGHTHS))) * 12
    transition = choice_bits()
    start = EIGHTHS.index(NEUTRAL)

    def cost(path):
        previous = [start, *path[:-1]]
        return sum(transition[p, c] + bits[i, c] for i, (p, c) in enumerate(zip(previous, path)))

    best = min(itertools.product(range(len(EIGHTHS)), repeat=n), key=cost)
    assert cost(list(cheapest_choices(bits))) == pytest.approx(cost(list(best)))


@pytest.mark.parametrize("sign_aligned", [False, True])
@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5), st.integers(0, 7), st.integers(0, 7), st.integers(0, 2**32 - 1))
def test_tempered_latents_round_trip(sign_aligned, channels, height, width, seed):
    symbols, prior, grid = random_latent(channels, height, width, seed)
    tables = aligned(context_tables(channels)) if sign_aligned else context_tables(channels)
    temperatures = np.random.default_rng(seed).choice(EIGHTHS, size=channels)
    payload = encode_latent(symbols, tables, prior, grid, temperatures)
    assert np.array_equal(decode_latent(payload, tables, height * width, prior, grid, tempered=True), symbols)
    chosen = choose_temperatures(tables, symbols, prior, grid)
    assert np.array_equal(decode_latent(encode_latent(symbols, tables, prior, grid, chosen), tables, height * width, prior, grid, True), symbols)


def test_a_latent_more_concentrated_than_its_tables_is_tempered_sharper_and_shrinks():
    from cdcodec.bitstream import tables_from_counts
    from cdcodec.bitstream.contexts import CONTEXTS

    symbols, prior, grid = random_latent(6, 24, 24, seed=3, zeros=0.97, largest=2)
    laplace = np.exp(-np.abs(np.arange(9) - 4) / 1.5) * 1000
    tables = tables_from_counts(np.tile(laplace, (6 * CONTEXTS, 1)), np.full(6 * CONTEXTS, -4), contexts=CONTEXTS)
    chosen = choose_temperatures(tables, symbols, prior, grid)
    assert (chosen > NEUTRAL).all()
    assert len(encode_latent(symbols, tables, prior, grid, chosen)) < 0.9 * len(encode_latent(symbols, tables, prior, grid))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_temperatures_are_priced_by_each_channels_whole_tempered_rows(channels, seed):
    """`choose_temperatures` tempers only the rows that code something, laid end to end;
    its bits must be, to the last float bit, those of the channel's whole tempered rows."""
    from cdcodec.bitstream.entropy import _tempered_bits

    tables = context_tables(channels)
    rng = np.random.default_rng(seed)
    shape = (tables.contexts, tables.pmfs.shape[1])
    counted = [(c, np.where(rng.random(shape) < 0.05, rng.integers(1, 9, shape), 0) * (np.arange(shape[1]) <= 8)) for c in range(channels)]
    got = _tempered_bits(tables, counted)
    for g, (c, counts) in enumerate(counted):
        rows = slice(c * tables.contexts, (c + 1) * tables.contexts)
        seen = counts > 0
        for k, eighths in enumerate(EIGHTHS):
            block = temper_rows(tables.pmfs[rows], tables.sizes[rows], eighths, TABLE_TOTAL)
            assert got[g, k] == -float(counts[seen] @ np.log2(block[seen] / TABLE_TOTAL))


def test_coding_leaves_nothing_behind_on_the_tables():
    """Row models and tempered rows live for one call: kept with the tables, they
    grew with every image coded, to 10 GB in a bench worker (session 63)."""
    symbols, prior, grid = random_latent(3, 6, 6, seed=5)
    tables = context_tables(3)

    def held(t):  # what the tables hold: each attribute, and how many entries a dict of them has
        return {k: len(v) if isinstance(v, dict) else id(v) for k, v in vars(t).items()}

    before = held(tables)
    chosen = choose_temperatures(tables, symbols, prior, grid)
    payload = encode_latent(symbols, tables, prior, grid, chosen)
    decode_latent(payload, tables, symbols.shape[1], prior, grid, tempered=True)
    assert held(tables) == before


def test_predicted_channels_are_not_tempered():
    from cdcodec.codec.training.fitting import fit_tables

    rng = np.random.default_rng(1)
    ramp = np.cumsum(rng.integers(-1, 2, size=(3, 64)), axis=1) + 20  # smooth, offset channels: predicted
    tables = fit_tables([ramp.astype(np.int32)], None, [(8, 8)])
    assert tables.predicted
    symbols = ramp.astype(np.int32)
    chosen = choose_temperatures(tables, symbols, None, (8, 8))
    assert all(chosen[c] == NEUTRAL for c in tables.predicted)
    with pytest.raises(ValueError, match="predicted"):
        encode_latent(symbols, tables, None, (8, 8), np.full(3, 12))


def test_the_section_says_whether_its_latent_is_tempered():
    for tempered in (False, True):
        post_filter, latent, flag = split_latent_section(join_latent_section(NO_FILTER, b"\x01\x02\x03\x04", tempered))
        assert post_filter is NO_FILTER and latent == b"\x01\x02\x03\x04" and flag is tempered
    assert join_latent_section(NO_FILTER, b"\x01\x02\x03\x04") == b"\x00\x01\x02\x03\x04"  # untempered files are unchanged


def test_a_tempered_file_decodes_to_the_same_pixels_at_every_prefix(tiny_model):
    from imagegen import smooth_image

    from cdcodec.bitstream import truncate, unpack
    from cdcodec.codec.pipeline import decode, encode

    image = smooth_image(40, 56, seed=2)
    plain, tempered = encode(image, model=tiny_model, temper=False), encode(image, model=tiny_model)  # tempered by default
    assert all(split_latent_section(p)[2] for p in unpack(tempered).payloads)
    assert not any(split_latent_section(p)[2] for p in unpack(plain).payloads)
    for stages in range(1, unpack(plain).stages_present + 1):
        assert np.array_equal(decode(truncate(tempered, stages), model=tiny_model), decode(truncate(plain, stages), model=tiny_model))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=128), st.integers(0, 64))
def test_random_tempered_payloads_raise_only_format_errors(blob, n):
    from cdcodec.bitstream import CdcFormatError

    tables = context_tables(2)
    try:
        out = decode_latent(blob, tables, n, None, (1, n), tempered=True)
    except CdcFormatError:
        return
    assert out.shape == (2, n)
