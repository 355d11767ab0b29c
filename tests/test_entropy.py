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


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(0, 40), st.integers(0, 2**32 - 1))
def test_round_trip_with_contexts_and_priors(channels, positions, seed):
    from cdcodec.bitstream.contexts import PRIOR_LEVELS

    rng = np.random.default_rng(seed)
    symbols = np.where(rng.random((channels, positions)) < 0.5, 0, rng.integers(-6, 7, (channels, positions))).astype(np.int32)
    prior = rng.integers(0, PRIOR_LEVELS, size=(channels, positions))
    tables = context_tables(channels)
    payload = encode_latent(symbols, tables, prior)
    assert np.array_equal(decode_latent(payload, tables, positions, prior), symbols)
    assert 8 * len(payload) >= tables.ideal_bits(symbols, prior) - 64


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
