"""Predicted channels: the decoder's one-at-a-time prediction matches the encoder's whole-plane one,
payloads round-trip, tables survive a weights file, and table fitting predicts smooth channels only."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cdcodec.bitstream import CdcFormatError, SymbolTables, decode_latent, encode_latent, tables_from_counts
from cdcodec.bitstream.contexts import CONTEXTS, PRIOR_LEVELS
from cdcodec.bitstream.entropy import LATENT_MAX, LATENT_MIN
from cdcodec.bitstream.prediction import PREDICTION_CONTEXTS, predict_at, prediction_contexts


@settings(max_examples=80, deadline=None)
@given(hnp.arrays(np.int64, st.tuples(st.integers(1, 7), st.integers(1, 7)), elements=st.integers(-40, 40)))
def test_decoder_prediction_matches_the_whole_plane_prediction(plane):
    h, w = plane.shape
    prediction, ids = prediction_contexts(plane, np.zeros(h * w, dtype=np.int64))
    rows = plane.tolist()
    for y in range(h):
        for x in range(w):
            # The decoder sees only the positions before (y, x): hide the rest.
            known = [row if i < y else (row[:x] if i == y else []) for i, row in enumerate(rows)]
            value, level = predict_at(known, y, x)
            assert (value, level * PRIOR_LEVELS) == (prediction[y * w + x], ids[y * w + x])


def test_prediction_of_a_smooth_plane_is_close():
    y, x = np.mgrid[0:6, 0:8]
    plane = 3 * y + 2 * x
    prediction, _ = prediction_contexts(plane, np.zeros(48, dtype=np.int64))
    error = np.abs(prediction - plane.reshape(-1))
    assert error[1:].max() <= 3  # the first position predicts 0


def predicted_tables(channels: int, predicted: tuple[int, ...]) -> SymbolTables:
    rng = np.random.default_rng(channels)
    counts = rng.integers(0, 50, size=(channels * CONTEXTS, 9)).astype(float)
    base = tables_from_counts(counts, np.full(channels * CONTEXTS, -4), contexts=CONTEXTS)
    if not predicted:
        return base
    residual_counts = rng.integers(0, 50, size=(len(predicted) * PREDICTION_CONTEXTS, 7)).astype(float)
    residuals = tables_from_counts(residual_counts, np.full(len(residual_counts), -3), contexts=PREDICTION_CONTEXTS)
    return SymbolTables(base.offsets, base.sizes, base.pmfs, CONTEXTS, predicted=predicted, residuals=residuals)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(0, 6), st.integers(0, 6), st.integers(0, 2**32 - 1), st.booleans())
def test_round_trip_with_predicted_channels(channels, height, width, seed, extreme):
    rng = np.random.default_rng(seed)
    positions, grid = height * width, (height, width)
    predicted = tuple(c for c in range(channels) if rng.random() < 0.6)
    symbols = rng.integers(-8, 9, (channels, positions)).astype(np.int32)
    if extreme and symbols.size:  # far outside every table: the escape path, and residuals beyond int16
        symbols.flat[rng.integers(0, symbols.size, 3)] = rng.choice([LATENT_MIN, LATENT_MAX], 3)
    prior = rng.integers(0, PRIOR_LEVELS, size=(channels, positions))
    tables = predicted_tables(channels, predicted)
    payload = encode_latent(symbols, tables, prior, grid)
    assert np.array_equal(decode_latent(payload, tables, positions, prior, grid), symbols)
    assert 8 * len(payload) >= tables.ideal_bits(symbols, prior, grid) - 64


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=96), st.integers(0, 5), st.integers(0, 5))
def test_random_payloads_with_predicted_channels_raise_only_format_errors(blob, height, width):
    tables = predicted_tables(2, (0,))
    try:
        out = decode_latent(blob, tables, height * width, None, (height, width))
    except CdcFormatError:
        return
    assert out.shape == (2, height * width)


def test_inconsistent_predicted_channels_are_refused():
    tables = predicted_tables(3, (0, 2))
    with pytest.raises(ValueError):
        SymbolTables(tables.offsets, tables.sizes, tables.pmfs, CONTEXTS, predicted=(2, 0), residuals=tables.residuals)
    with pytest.raises(ValueError):
        SymbolTables(tables.offsets, tables.sizes, tables.pmfs, CONTEXTS, predicted=(0,), residuals=tables.residuals)
    with pytest.raises(ValueError):
        SymbolTables(tables.offsets, tables.sizes, tables.pmfs, CONTEXTS, predicted=(0, 3), residuals=tables.residuals)
    with pytest.raises(ValueError):
        SymbolTables(tables.offsets, tables.sizes, tables.pmfs, CONTEXTS, predicted=(0,))


def test_predicted_tables_survive_the_weights_layout():
    from cdcodec.codec.weights import tables_from_tensors, tables_to_tensors

    tables = predicted_tables(3, (0, 2))
    back = tables_from_tensors(tables_to_tensors(tables, "t"), "t")
    assert back.predicted == (0, 2)
    assert np.array_equal(back.pmfs, tables.pmfs) and np.array_equal(back.residuals.pmfs, tables.residuals.pmfs)
    assert np.array_equal(back.residuals.offsets, tables.residuals.offsets)


def test_fitting_predicts_a_smooth_channel_and_not_a_noisy_one():
    from cdcodec.codec.training.fitting import fit_tables

    rng = np.random.default_rng(0)
    batches, grids = [], []
    for _ in range(40):
        y, x = np.mgrid[0:8, 0:8]
        smooth = np.round(10 * np.sin(y / 3 + rng.random() * 6) + 10 * np.cos(x / 4 + rng.random() * 6))
        noisy = np.where(rng.random((8, 8)) < 0.7, 0, rng.integers(-2, 3, (8, 8)))
        batches.append(np.stack([smooth.reshape(-1), noisy.reshape(-1)]).astype(np.int32))
        grids.append((8, 8))
    tables = fit_tables(batches, None, grids)
    assert tables.predicted == (0,)
    prior = np.zeros((2, 64), dtype=np.int64)
    payload = encode_latent(batches[0], tables, prior, (8, 8))
    assert np.array_equal(decode_latent(payload, tables, 64, prior, (8, 8)), batches[0])


def test_move_bits_forbids_moving_a_predicted_channel():
    """A predicted channel's cost depends on its neighbours, which the per-symbol
    estimate cannot see: the search must not move it."""
    from cdcodec.bitstream.entropy import move_bits

    grid = (3, 4)
    symbols = np.arange(36, dtype=np.int32).reshape(3, 12) % 5 - 2
    change = move_bits(predicted_tables(3, (1,)), symbols, np.zeros((3, 12), dtype=np.int64), grid)
    assert change.shape == (2, 3, 12)
    change = change[1]
    assert np.isinf(change[1]).all() and np.isfinite(change[[0, 2]]).all()
