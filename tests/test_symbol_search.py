"""The encoder's rate-distortion search over a stage's symbols (`codec/symbol_search.py`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_msssim import ms_ssim

from cdcodec.bitstream import unpack
from cdcodec.bitstream.entropy import move_bits
from cdcodec.codec.model import stage_prior, symbols_to_array
from cdcodec.codec.networks import lambda_for_step
from cdcodec.codec.pipeline import DEFAULT_SEARCH_ROUNDS, _to_tensor, decode, encode
from cdcodec.codec.similarity import MS_SSIM_LAMBDA_SCALE
from cdcodec.codec.symbol_search import MOVES, StageRate, _sum_around_blocks, search_symbols

from imagegen import smooth_image
from reach import half_block_around, one_move_change


def stage_one_search(tiny_model, image: np.ndarray, rounds: int, lam_factor: float = 1.0, ms_ssim_share: float = 0.0):
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
            recon = stage.synthesise(q, prev)[..., :height, :width]
            similarity = ms_ssim(recon.clamp(0, 1), x[..., :height, :width], data_range=1.0) if ms_ssim_share else 1.0
        squared = float(((recon - x[..., :height, :width]) ** 2).mean())
        distortion = (1 - ms_ssim_share) * squared + ms_ssim_share * MS_SSIM_LAMBDA_SCALE * (1 - float(similarity))
        return rate.bits(q) / (height * width) + lam * distortion

    searched = search_symbols(stage, x, prev, 1.0, rounded, rate, lam, (height, width), rounds, ms_ssim_share)
    return rounded, searched, objective


@pytest.mark.parametrize("seed, lam_factor", [(0, 1.0), (1, 1.0), (2, 0.05), (3, 20.0)])
def test_search_never_ends_above_rounding_and_sends_integers(tiny_model, seed, lam_factor):
    rounded, searched, objective = stage_one_search(tiny_model, smooth_image(40, 48, seed=seed), rounds=3, lam_factor=lam_factor)
    assert searched.shape == rounded.shape
    assert torch.equal(searched, torch.round(searched))
    assert objective(searched) <= objective(rounded)


def test_the_search_with_ms_ssim_never_ends_above_rounding(tiny_model):
    """A distortion that holds MS-SSIM (a picture large enough for it) measures its blocks too,
    with the MS-SSIM term's change spread over pixels by its five scales' maps."""
    rounded, searched, objective = stage_one_search(tiny_model, smooth_image(176, 168, seed=10), rounds=2, ms_ssim_share=0.5)
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


def test_negative_rounds_are_refused(tiny_model):
    with pytest.raises(ValueError, match="search rounds"):
        encode(smooth_image(16, 16), model=tiny_model, search_rounds=-1)


@pytest.mark.parametrize("cell", [2, 3])
def test_each_pixel_is_charged_to_the_moved_block_whose_cell_holds_it(cell):
    """Cells of cell × cell blocks centred on the blocks of one position cover the
    picture's pixels within (cell − 1)/2 blocks of those blocks, once each."""
    block, grid = 8, (5, 6)
    height, width = 37, 45  # the grid of blocks overhangs the picture
    margin = (cell - 1) * block // 2
    for row in range(cell):
        for col in range(cell):
            per_pixel = torch.arange(height * width, dtype=torch.float64).reshape(height, width)
            sums = _sum_around_blocks(per_pixel, block, row, col, grid, cell)
            expected = torch.zeros(grid, dtype=torch.float64)
            for i in range(row, grid[0], cell):
                for j in range(col, grid[1], cell):
                    top, left = max(0, i * block - margin), max(0, j * block - margin)
                    expected[i, j] = per_pixel[top : (i + 1) * block + margin, left : (j + 1) * block + margin].sum()
            assert torch.equal(sums, expected)


def test_a_move_changes_no_pixel_beyond_half_a_block_around_its_block(tiny_model):
    """What lets four decoder passes measure one move in every block: the stage decoder's
    reach (linear synthesis of the block, then one pixel per layer of the refine CNN),
    as in the shipped models (blocks of 8 or 16, four layers)."""
    codec = tiny_model.codec
    stage = codec.stages[0]
    block = stage.config.block
    assert stage.config.refine_layers <= block // 2  # each 3×3 layer reaches one pixel further
    x = _to_tensor(smooth_image(48, 48, seed=8), codec.config.multiple)
    change = one_move_change(stage, x, codec.base(x), channel=0, delta=1)
    reach = half_block_around(change, block)
    assert change[reach].sum() > 0
    assert change[~reach].max() == 0
