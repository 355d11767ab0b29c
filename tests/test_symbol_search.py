"""The encoder's rate-distortion search over a stage's symbols (`codec/symbol_search.py`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cdcodec.bitstream import unpack
from cdcodec.bitstream.entropy import move_bits
from cdcodec.codec.model import stage_prior, symbols_to_array
from cdcodec.codec.networks import lambda_for_step
from cdcodec.codec.pipeline import DEFAULT_SEARCH_ROUNDS, _to_tensor, decode, encode
from cdcodec.codec.symbol_search import MOVES, StageRate, search_symbols

from imagegen import smooth_image


def stage_one_search(tiny_model, image: np.ndarray, rounds: int, lam_factor: float = 1.0):
    """(rounded symbols, searched symbols, objective of a symbol tensor) for stage 1 of the tiny model."""
    codec = tiny_model.codec
    stage, tables = codec.stages[0], codec.tables_for(0)
    x = _to_tensor(image, codec.config.multiple)
    prev = codec.base(x)
    with torch.no_grad():
        rounded = stage.quantize(stage.analyse(x, prev))
    grid = tuple(rounded.shape[-2:])
    prior = stage_prior(None, grid, rounded.shape[1])
    rate = StageRate(
        lambda q: tables.ideal_bits(symbols_to_array(q), prior, grid),
        lambda q: torch.from_numpy(move_bits(tables, symbols_to_array(q), prior, grid, MOVES)).reshape(len(MOVES), *q.shape).float(),
    )
    lam = lam_factor * lambda_for_step(stage.config.step)
    height, width = image.shape[:2]

    def objective(q: torch.Tensor) -> float:
        with torch.no_grad():
            recon = stage.synthesise(q, prev)
        return rate.bits(q) / (height * width) + lam * float(((recon - x)[..., :height, :width] ** 2).mean())

    searched = search_symbols(stage, x, prev, 1.0, rounded, rate, lam, (height, width), rounds)
    return rounded, searched, objective


@pytest.mark.parametrize("seed, lam_factor", [(0, 1.0), (1, 1.0), (2, 0.05), (3, 20.0)])
def test_search_never_ends_above_rounding_and_sends_integers(tiny_model, seed, lam_factor):
    rounded, searched, objective = stage_one_search(tiny_model, smooth_image(40, 48, seed=seed), rounds=3, lam_factor=lam_factor)
    assert searched.shape == rounded.shape
    assert torch.equal(searched, torch.round(searched))
    assert objective(searched) <= objective(rounded)


def test_search_drops_symbols_when_rate_is_all_that_counts(tiny_model):
    """With λ near zero a nonzero symbol costs more than the error it saves: the search
    must send fewer of them (on a noisy image, so that channels the tables code
    directly, not by prediction, carry many)."""
    rng = np.random.default_rng(0)
    noisy = np.clip(smooth_image(40, 48, seed=4) + rng.integers(-40, 41, (40, 48, 3)), 0, 255).astype(np.uint8)
    rounded, searched, objective = stage_one_search(tiny_model, noisy, rounds=4, lam_factor=1e-4)
    assert int((searched != 0).sum()) < int((rounded != 0).sum())
    assert objective(searched) < objective(rounded)


def test_searched_files_decode_deterministically(tiny_model):
    image = smooth_image(33, 47, seed=5)
    plain = encode(image, model=tiny_model, search_rounds=0)
    searched = encode(image, model=tiny_model, search_rounds=2)
    assert unpack(searched).stages_present == unpack(plain).stages_present
    assert decode(searched, model=tiny_model).shape == image.shape
    assert encode(image, model=tiny_model, search_rounds=2) == searched


def test_lossy_files_are_searched_by_default_and_exact_ones_are_not(tiny_model):
    """The search weighs a lossy stage's own distortion, not the exact stage's size after it."""
    image = smooth_image(33, 47, seed=6)
    assert encode(image, model=tiny_model) == encode(image, model=tiny_model, search_rounds=DEFAULT_SEARCH_ROUNDS)
    assert encode(image, model=tiny_model, lossless=True) == encode(image, model=tiny_model, lossless=True, search_rounds=0)
    assert encode(image, model=tiny_model, max_error=2) == encode(image, model=tiny_model, max_error=2, search_rounds=0)


def test_large_pictures_are_not_searched_unless_asked(tiny_model, monkeypatch):
    """The search's gradient pass keeps full-resolution activations: by default it stops above a size."""
    from cdcodec.codec import pipeline

    image = smooth_image(33, 47, seed=7)
    monkeypatch.setattr(pipeline, "SEARCH_DEFAULT_MAX_PIXELS", 33 * 47 - 1)
    assert encode(image, model=tiny_model) == encode(image, model=tiny_model, search_rounds=0)
    monkeypatch.setattr(pipeline, "SEARCH_DEFAULT_MAX_PIXELS", 33 * 47)
    assert encode(image, model=tiny_model) == encode(image, model=tiny_model, search_rounds=DEFAULT_SEARCH_ROUNDS)


def test_the_share_threshold_is_the_order_statistic_quantile_interpolates_from():
    """kthvalue replaces torch.quantile (which refuses over 2^24 values) without changing which moves are kept."""
    torch.manual_seed(0)
    gain = -torch.rand(1000)
    for share in (1 / 4, 1 / 8, 1 / 32):
        kept = gain <= torch.kthvalue(gain, int((gain.numel() - 1) * share) + 1).values
        assert torch.equal(kept, gain <= torch.quantile(gain, share))


def test_negative_rounds_are_refused(tiny_model):
    with pytest.raises(ValueError, match="search rounds"):
        encode(smooth_image(16, 16), model=tiny_model, search_rounds=-1)
