"""Entropy coding is symbol-exact, bounded, and close to the tables' ideal rate."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cdcodec.bitstream import CdcFormatError, SymbolTables, decode_latent, encode_latent, tables_from_counts
from cdcodec.bitstream.entropy import LATENT_MAX, LATENT_MIN, TABLE_TOTAL


def laplace_tables(channels: int, width: int = 21) -> SymbolTables:
    values = np.arange(width) - width // 2
    counts = np.tile(np.exp(-np.abs(values) / 2.0) * 1000, (channels, 1))
    return tables_from_counts(counts, np.full(channels, -(width // 2)))


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.int32, st.tuples(st.integers(1, 4), st.integers(0, 50)), elements=st.integers(LATENT_MIN, LATENT_MAX)))
def test_round_trip_any_int16_latent(symbols):
    tables = laplace_tables(symbols.shape[0])
    payload = encode_latent(symbols, tables)
    assert np.array_equal(decode_latent(payload, tables, symbols.shape[1]), symbols)


def test_rate_matches_ideal_information_content():
    rng = np.random.default_rng(1)
    tables = laplace_tables(8)
    symbols = np.clip(np.round(rng.laplace(0, 2, size=(8, 20000))), -10, 10).astype(np.int32)
    real_bits = 8 * len(encode_latent(symbols, tables))
    ideal = tables.ideal_bits(symbols)
    assert ideal <= real_bits <= ideal * 1.01 + 64


def test_payload_must_be_used_up_exactly():
    tables = laplace_tables(2)
    symbols = np.array([[0, 1, -1, 3], [2, 0, 0, -5]], dtype=np.int32)
    payload = encode_latent(symbols, tables)
    with pytest.raises(CdcFormatError):
        decode_latent(payload + b"\x07\x00\x00\x00", tables, 4)
    with pytest.raises(CdcFormatError):
        decode_latent(payload[:-1], tables, 4)
    with pytest.raises(CdcFormatError):
        decode_latent(payload, tables, 1)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=128), st.integers(0, 64))
def test_random_payloads_raise_only_format_errors(blob, n):
    tables = laplace_tables(3)
    try:
        out = decode_latent(blob, tables, n)
    except CdcFormatError:
        return
    assert out.shape == (3, n)


def test_tables_are_exact_integers_summing_to_total():
    tables = tables_from_counts(np.array([[0, 5, 0], [1, 1, 1]]), np.array([0, -1]), sizes=np.array([3, 2]))
    for c in range(2):
        row = tables.pmfs[c, : tables.sizes[c] + 1]
        assert row.sum() == TABLE_TOTAL and (row >= 1).all()
    with pytest.raises(ValueError):
        SymbolTables(offsets=np.zeros(1, np.int32), sizes=np.ones(1, np.int32), pmfs=np.zeros((1, 2), np.uint32))


def test_out_of_range_latent_is_refused_by_the_encoder():
    with pytest.raises(ValueError):
        encode_latent(np.array([[LATENT_MAX + 1]]), laplace_tables(1))


def context_tables(channels: int) -> SymbolTables:
    from cdcodec.bitstream.contexts import CONTEXTS

    rng = np.random.default_rng(channels)
    counts = rng.integers(0, 50, size=(channels * CONTEXTS, 9)).astype(float)
    return tables_from_counts(counts, np.full(channels * CONTEXTS, -4), contexts=CONTEXTS)


def random_latent(
    channels: int, height: int, width: int, seed: int, zeros: float = 0.5, largest: int = 6
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """(symbols, prior levels, grid): a share `zeros` of the symbols 0, the rest in
    -largest..largest, and random prior levels."""
    from cdcodec.bitstream.contexts import PRIOR_LEVELS

    rng = np.random.default_rng(seed)
    positions = height * width
    symbols = np.where(rng.random((channels, positions)) < zeros, 0, rng.integers(-largest, largest + 1, (channels, positions)))
    return symbols.astype(np.int32), rng.integers(0, PRIOR_LEVELS, size=(channels, positions)), (height, width)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(0, 7), st.integers(0, 7), st.integers(0, 2**32 - 1))
def test_round_trip_with_contexts_and_priors(channels, height, width, seed):
    symbols, prior, grid = random_latent(channels, height, width, seed)
    positions = height * width
    tables = context_tables(channels)
    payload = encode_latent(symbols, tables, prior, grid)
    assert np.array_equal(decode_latent(payload, tables, positions, prior, grid), symbols)
    assert 8 * len(payload) >= tables.ideal_bits(symbols, prior, grid) - 64


def test_stage_prior_modes():
    from cdcodec.bitstream.contexts import PRIOR_LEVELS, stage_prior

    previous = np.array([[0, 5, -1, 0], [2, 0, 0, -9]])
    # Same grid and channels: the magnitude of the same coefficient, capped.
    same = stage_prior(previous, (2, 2), (2, 2), 2)
    assert same.tolist() == [[0, PRIOR_LEVELS - 1, 1, 0], [2, 0, 0, PRIOR_LEVELS - 1]]
    # A finer grid: the activity of the covering block, for every channel.
    finer = stage_prior(previous, (2, 2), (4, 4), 3)
    assert finer.shape == (3, 16)
    assert finer[0].reshape(4, 4)[0, 0] == finer[2].reshape(4, 4)[1, 1] == 1  # block (0,0) has one nonzero
    assert (stage_prior(None, (0, 0), (2, 3), 4) == 0).all()


def golden_latent() -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """A 3-channel latent on a 5×6 grid with its prior levels, from formulas (no RNG)."""
    c, y, x = np.meshgrid(np.arange(3), np.arange(5), np.arange(6), indexing="ij")
    symbols = np.where((y * 7 + x * 5 + c) % 3 == 0, 0, (y * x + c * 4) % 9 - 4) * (3 - c) // 2
    prior = (y + 2 * x + c) % 4
    return symbols.reshape(3, -1).astype(np.int32), prior.reshape(3, -1), (5, 6)


def test_a_latent_payload_written_by_an_earlier_build_still_decodes():
    """Latent coding must stay the same in every later build of format 4.

    The fixture was written by the format-4 encoder when that format was made.
    If this fails, the latent coding (contexts, grouping or order) changed:
    that needs a new FORMAT_VERSION.
    """
    from pathlib import Path

    symbols, prior, grid = golden_latent()
    tables = context_tables(3)
    payload = (Path(__file__).parent / "fixtures" / "latent-payload-v4.bin").read_bytes()
    assert np.array_equal(decode_latent(payload, tables, symbols.shape[1], prior, grid), symbols)
    assert encode_latent(symbols, tables, prior, grid) == payload


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.int64, st.tuples(st.integers(1, 6), st.integers(1, 6)), elements=st.integers(0, 40)), st.booleans())
def test_neighbour_sum_is_the_padded_four_neighbour_sum(values, replicate_edge):
    from cdcodec.bitstream.contexts import neighbour_sum

    padded = np.pad(values, 1, mode="edge" if replicate_edge else "constant")
    expected = padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]
    assert np.array_equal(neighbour_sum(values, replicate_edge), expected)


@pytest.mark.parametrize("sign_aligned", [False, True])
@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(2, 6), st.integers(2, 6), st.sampled_from([-1, 1]), st.integers(0, 2**32 - 1))
def test_move_bits_is_the_exact_change_where_a_move_touches_no_context(sign_aligned, channels, height, width, delta, seed):
    """A second-checkerboard-half symbol of the last channel sets no other symbol's
    context (nor, with sign-aligned tables, orientation), so its estimated change of
    bits must be the true one."""
    from cdcodec.bitstream.contexts import checker_halves
    from cdcodec.bitstream.entropy import move_bits

    symbols, prior, grid = random_latent(channels, height, width, seed)
    tables = aligned(context_tables(channels)) if sign_aligned else context_tables(channels)
    change = move_bits(tables, symbols, prior, grid, (delta,))[0]
    assert change.shape == symbols.shape
    before = tables.ideal_bits(symbols, prior, grid)
    for position in checker_halves(grid)[1]:
        moved = symbols.copy()
        moved[-1, position] += delta
        assert change[-1, position] == pytest.approx(tables.ideal_bits(moved, prior, grid) - before)


def test_move_bits_prices_a_move_into_the_escape():
    from cdcodec.bitstream.entropy import move_bits

    tables = laplace_tables(2, width=5)  # values -2..2, no contexts
    symbols = np.array([[2, 0], [0, 0]], dtype=np.int32)
    up = move_bits(tables, symbols, None, None, (1,))[0]
    escape = tables.bit_costs[0, tables.sizes[0]] + 16.0
    assert up[0, 0] == pytest.approx(escape - tables.bit_costs[0, 4])
    assert up[1, 1] == pytest.approx(tables.bit_costs[1, 3] - tables.bit_costs[1, 2])
    moved = symbols.copy()
    moved[0, 0] = 3
    assert up[0, 0] == pytest.approx(tables.ideal_bits(moved) - tables.ideal_bits(symbols))


def aligned(tables: SymbolTables) -> SymbolTables:
    return SymbolTables(tables.offsets, tables.sizes, tables.pmfs, tables.contexts, sign_aligned=True)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.int64, st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6)), elements=st.integers(-3, 3)))
def test_sign_orientation_flips_only_second_half_symbols_whose_neighbours_lean_negative(latent):
    from cdcodec.bitstream.contexts import checker_halves, sign_orientation

    c, h, w = latent.shape
    symbols = latent.reshape(c, -1)
    orientation = sign_orientation(symbols, (h, w))
    padded = np.pad(np.sign(latent), ((0, 0), (1, 1), (1, 1)))
    lean = (padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1] + padded[:, 1:-1, :-2] + padded[:, 1:-1, 2:]).reshape(c, -1)
    first, second = checker_halves((h, w))
    assert (orientation[:, first] == 1).all()
    assert np.array_equal(orientation[:, second], np.where(lean[:, second] < 0, -1, 1))  # second-half neighbours are all first-half
    # The coder's values give back the same orientation, so the decoder can undo it.
    assert np.array_equal(sign_orientation(symbols * orientation, (h, w)), orientation)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(0, 7), st.integers(0, 7), st.integers(0, 2**32 - 1))
def test_sign_aligned_tables_round_trip_and_code_the_oriented_values(channels, height, width, seed):
    from cdcodec.bitstream.contexts import sign_orientation

    symbols, prior, grid = random_latent(channels, height, width, seed)
    positions = height * width
    plain, tables = context_tables(channels), aligned(context_tables(channels))
    payload = encode_latent(symbols, tables, prior, grid)
    assert np.array_equal(decode_latent(payload, tables, positions, prior, grid), symbols)
    oriented = (symbols * sign_orientation(symbols, grid)).astype(np.int32)
    assert tables.ideal_bits(symbols, prior, grid) == pytest.approx(plain.ideal_bits(oriented, prior, grid))
    assert payload == encode_latent(oriented, plain, prior, grid)


def test_sign_alignment_needs_context_tables():
    with pytest.raises(ValueError, match="sign alignment"):
        aligned(laplace_tables(2))


def test_fitting_with_sign_alignment_codes_sign_correlated_latents_in_fewer_bits():
    """Blocks of a smooth region share their coefficients' signs; only aligned tables can use that."""
    from cdcodec.codec.training.fitting import fit_tables

    rng = np.random.default_rng(0)
    batches, grids = [], []
    for _ in range(30):
        region_sign = np.where(rng.random((2, 1, 1)) < 0.5, -1, 1)  # one sign per channel and image
        sizes = np.where(rng.random((2, 12, 12)) < 0.5, 0, rng.integers(1, 4, (2, 12, 12)))
        signs = np.where(rng.random((2, 12, 12)) < 0.95, region_sign, -region_sign)
        batches.append((sizes * signs).reshape(2, -1).astype(np.int32))
        grids.append((12, 12))
    plain, tables = fit_tables(batches[:20], None, grids[:20]), fit_tables(batches[:20], None, grids[:20], sign_aligned=True)
    assert tables.sign_aligned and not plain.sign_aligned
    test = [(b, np.zeros_like(b, dtype=np.int64), g) for b, g in zip(batches[20:], grids[20:])]
    assert sum(tables.ideal_bits(*t) for t in test) < 0.96 * sum(plain.ideal_bits(*t) for t in test)
    for symbols, prior, grid in test:
        assert np.array_equal(decode_latent(encode_latent(symbols, tables, prior, grid), tables, symbols.shape[1], prior, grid), symbols)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.integers(2, 6), st.integers(2, 6), st.sampled_from([-1, 1]), st.integers(0, 2**32 - 1))
def test_move_bits_counts_the_neighbours_a_move_reorients(channels, height, width, delta, seed):
    """With tables whose rows ignore the context but not the sign, a move of the last
    channel changes no other symbol's bits except by turning its neighbours' orientation
    over, so the estimate must be exact for the first half too."""
    from cdcodec.bitstream.contexts import CONTEXTS
    from cdcodec.bitstream.entropy import move_bits

    symbols, prior, grid = random_latent(channels, height, width, seed, zeros=0.4, largest=3)
    positions = height * width
    rng = np.random.default_rng(seed + 1)
    skewed = np.repeat(rng.integers(1, 60, size=(channels, 9)).astype(float), CONTEXTS, axis=0)  # same row in every context
    tables = aligned(tables_from_counts(skewed, np.full(channels * CONTEXTS, -4), contexts=CONTEXTS))
    change = move_bits(tables, symbols, prior, grid, (delta,))[0]
    before = tables.ideal_bits(symbols, prior, grid)
    for position in range(positions):
        moved = symbols.copy()
        moved[-1, position] += delta
        assert change[-1, position] == pytest.approx(tables.ideal_bits(moved, prior, grid) - before)
