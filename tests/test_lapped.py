"""Lapped stages (StageConfig.overlap): kernels that reach beyond the block, in every code path."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cdcodec.cli.main import cli
from cdcodec.codec import exact
from cdcodec.codec.model import CodecConfig, symbols_to_array
from cdcodec.codec.networks import BlockTransform
from cdcodec.codec.pipeline import LoadedModel, decode, encode
from cdcodec.codec.stage import StageConfig
from cdcodec.codec.symbol_search import _sum_around_blocks
from cdcodec.codec.training.stage_tune import StageTuneSettings, with_overlap
from cdcodec.codec.weights import codec_tensors, load_codec
from conftest import build_tiny_model, check_resumed_refit_round_trip
from imagegen import photo_folder, smooth_image
from reach import half_block_around, one_move_change, pixels_around

#: Stage 1 on 8-pixel blocks overlapping by 2 (2 refine layers: 2 + 2 = half a block), then one without overlap.
LAPPED = CodecConfig(
    model_id="test-lapped",
    stages=(
        StageConfig(block=8, step=0.3, refine_features=8, refine_layers=2, encoder_features=8, overlap=2),
        StageConfig(block=8, step=0.1, refine_features=8, refine_layers=2, encoder_features=8),
    ),
    qualities=(1.5, 1.0, 0.7),
)


@pytest.fixture(scope="module")
def lapped_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("lapped") / "lapped.safetensors"
    build_tiny_model(path, LAPPED, margins=0.05)
    return path


def test_zero_margins_give_the_block_transform():
    torch.manual_seed(0)
    basis = torch.linalg.qr(torch.randn(48, 48))[0]
    block, lapped = BlockTransform(4), BlockTransform(4, overlap=2)
    block.reset_orthonormal(basis)
    lapped.reset_orthonormal(basis)
    x = torch.rand(1, 3, 12, 16)
    with torch.no_grad():
        y = block.analyse(x)
        assert lapped.analyse(x).shape == y.shape == (1, 48, 3, 4)  # the same latent grid
        assert torch.allclose(lapped.analyse(x), y, atol=1e-6)
        assert torch.allclose(lapped.synthesise(y), block.synthesise(y), atol=1e-6)
        assert torch.allclose(block.synthesise(y), x, atol=1e-5)  # orthonormal: perfect reconstruction


def test_the_overlap_counts_in_the_reach_of_a_symbol():
    assert StageConfig(block=16, step=0.5, overlap=4).overlap == 4
    for overlap, layers in ((13, 4), (-1, 4), (15, 2), (14, 3)):
        with pytest.raises(ValueError):
            StageConfig(block=16, step=0.5, refine_layers=layers, overlap=overlap)


def test_the_search_takes_cells_of_three_blocks_for_a_stage_reaching_past_half_a_block():
    """The shipped layouts (reach at most half a block) keep the search's 2×2 cells."""
    for block, overlap, layers, cell in ((16, 4, 4, 2), (8, 0, 4, 2), (8, 2, 2, 2), (8, 2, 4, 3), (8, 4, 4, 3), (16, 10, 4, 3)):
        config = StageConfig(block=block, step=0.2, refine_layers=layers, overlap=overlap)
        assert (config.reach, config.search_cell) == (overlap + layers, cell)


def test_a_lapped_symbol_changes_pixels_within_half_a_block(lapped_weights):
    """What the symbol search relies on, with margins and a refine CNN that matter."""
    codec = load_codec(lapped_weights)[0]
    stage = codec.stages[0]
    torch.manual_seed(1)
    with torch.no_grad():
        stage.refine.body[-1].weight.normal_(0, 0.1)
    x = torch.from_numpy(smooth_image(48, 48, seed=3)).permute(2, 0, 1)[None].float() / 255
    block = stage.config.block
    change = one_move_change(stage, x, codec.base(x), channel=0, delta=3)
    inside = half_block_around(change, block)
    assert change[~inside].abs().max() == 0
    # ...and the margins do reach beyond the block itself.
    low, high = 2 * block, 3 * block
    beyond = torch.ones_like(inside)
    beyond[low:high, low:high] = False
    assert change[beyond & inside].abs().max() > 0


#: Stage 1 on 8-pixel blocks overlapping by 2 with 4 refine layers: a symbol reaches 6
#: pixels, past half a block, so the search measures moves in cells of 3×3 blocks.
WIDE_REACH = replace(LAPPED, model_id="test-wide-reach", stages=(replace(LAPPED.stages[0], refine_layers=4), LAPPED.stages[1]))


@pytest.fixture(scope="module")
def wide_reach_stage(tmp_path_factory):
    """(weights path, stage 1 with a refine CNN whose every layer matters, an image, stage 1's prediction)."""
    path = tmp_path_factory.mktemp("wide") / "wide.safetensors"
    build_tiny_model(path, WIDE_REACH, margins=0.05)
    codec = load_codec(path)[0]
    stage = codec.stages[0]
    assert stage.config.search_cell == 3
    torch.manual_seed(4)
    with torch.no_grad():
        for parameter in stage.refine.parameters():
            parameter.normal_(0, 0.2)
    x = torch.from_numpy(smooth_image(48, 56, seed=5)).permute(2, 0, 1)[None].float() / 255
    return path, stage, x, codec.base(x)


def test_a_symbol_reaching_past_half_a_block_stays_within_a_block(wide_reach_stage):
    _, stage, x, prev = wide_reach_stage
    block = stage.config.block
    change = one_move_change(stage, x, prev, channel=0, delta=3)
    assert change[~pixels_around(change, block, stage.config.reach)].max() == 0
    assert change[~half_block_around(change, block)].max() > 0  # cells of 2 blocks would not hold it


def test_cells_of_three_blocks_measure_each_move_of_a_pass_as_if_alone(wide_reach_stage):
    """What nine decoder passes a round rely on: with moves in every third block at once,
    the squared error summed over each moved block's cell is that move's own change."""
    _, stage, x, prev = wide_reach_stage
    block = stage.config.block
    with torch.no_grad():
        q = stage.quantize(stage.analyse(x, prev))
        base = ((stage.synthesise(q, prev) - x) ** 2).sum(dim=(0, 1))

        def change(moves: torch.Tensor) -> torch.Tensor:
            return ((stage.synthesise(q + moves, prev) - x) ** 2).sum(dim=(0, 1)) - base

        grid = tuple(q.shape[-2:])
        for row, col in ((0, 0), (1, 2), (2, 1)):
            together = torch.zeros_like(q)
            together[0, 1, row::3, col::3] = 2
            sums = _sum_around_blocks(change(together), block, row, col, grid, 3)
            for i in range(row, grid[0], 3):
                for j in range(col, grid[1], 3):
                    alone = torch.zeros_like(q)
                    alone[0, 1, i, j] = 2
                    assert torch.isclose(sums[i, j], change(alone).sum(), rtol=1e-4, atol=1e-6), (row, col, i, j)


def test_a_stage_reaching_past_half_a_block_is_searched_and_decodes(wide_reach_stage):
    path = wide_reach_stage[0]
    image = smooth_image(40, 48, seed=6)
    searched, plain = encode(image, model=path, search_rounds=2), encode(image, model=path, search_rounds=0)
    assert searched != plain  # the search moved symbols
    assert searched == encode(image, model=path, search_rounds=2)
    assert decode(searched, model=path).shape == image.shape


def test_the_exact_preview_adds_overlapping_patches(lapped_weights):
    codec = load_codec(lapped_weights)[0]
    torch.manual_seed(2)
    q = torch.randint(-4, 5, (1, codec.stages[0].latent_channels, 3, 5)).float()
    height, width = 24, 40
    preview = exact.exact_preview(codec, [symbols_to_array(q)], [1.0], height, width)
    # The same integer filters as a float64 transposed convolution (exact for integers).
    matrix = exact.synthesis_matrices(codec, [1.0])[0]
    side = 8 + 2 * 2
    fixed = torch.nn.functional.conv_transpose2d(q.double(), torch.from_numpy(matrix).reshape(-1, 3, side, side), stride=8, padding=2)
    fixed = fixed[0].permute(1, 2, 0).numpy().astype(np.int64) + (255 << (exact.PREVIEW_BITS - 1)) + (1 << (exact.PREVIEW_BITS - 1))
    assert np.array_equal(preview, np.clip(fixed >> exact.PREVIEW_BITS, 0, 255).astype(np.uint8))


def test_a_lapped_model_codes_lossy_lossless_and_near_lossless(lapped_weights):
    image = smooth_image(36, 44, seed=7)  # not a multiple of the block: padded, cropped
    lossy = decode(encode(image, model=lapped_weights), model=lapped_weights)
    assert lossy.shape == image.shape and np.abs(lossy.astype(int) - image).mean() < 20
    exact_file = encode(image, model=lapped_weights, lossless=True)
    assert np.array_equal(decode(exact_file, model=lapped_weights), image)
    near = decode(encode(image, model=lapped_weights, max_error=2), model=lapped_weights)
    assert np.abs(near.astype(int) - image).max() <= 2


def test_widening_keeps_the_models_files_until_trained(tmp_path):
    path = tmp_path / "block.safetensors"
    build_tiny_model(path, replace(LAPPED, stages=(replace(LAPPED.stages[0], overlap=0), LAPPED.stages[1])))
    source = LoadedModel(*load_codec(path))
    wider = with_overlap(source.codec, 1, 2, LAPPED.model_id)
    assert wider.config.stages[0].overlap == 2 and wider.tables is not source.codec.tables
    image = smooth_image(32, 40, seed=8)
    for options in ({}, {"lossless": True}, {"quality": 0, "stages": 1}):
        assert encode(image, model=LoadedModel(wider, source.digest), **options) == encode(image, model=source, **options)
    with pytest.raises(ValueError, match="overlaps them by 0 to 6"):
        with_overlap(source.codec, 1, 7, "x")  # 2 refine layers must still fit in a block of 8
    with pytest.raises(ValueError, match="only grow"):
        with_overlap(wider, 1, 1, "x")


def _tables(codec) -> dict:
    return {k: v for k, v in codec_tensors(codec).items() if k.startswith("tables.")}


def test_train_stage_tunes_one_stage_and_resumes(tmp_path, lapped_weights):
    folder, work, out = photo_folder(tmp_path), tmp_path / "work", tmp_path / "tuned.safetensors"
    args = ["train-stage", str(lapped_weights), "--data", str(folder), "--model-id", "tuned", "--stage", "2", "--overlap", "1",
            "--batch", "2", "--crop", "16", "--work-dir", str(work), "--out", str(out)]
    result = CliRunner().invoke(cli, [*args, "--steps", "3"])
    assert result.exit_code == 0, result.output
    source, tuned = load_codec(lapped_weights)[0], load_codec(out)[0]
    assert tuned.config.model_id == "tuned" and tuned.config.stages[1].overlap == 1
    assert _tables(tuned).keys() == _tables(source).keys()  # the source's, to be refit
    assert all(torch.equal(_tables(tuned)[k], v) for k, v in _tables(source).items())
    before, after = source.state_dict(), tuned.state_dict()
    for key, value in after.items():
        if key.startswith("stages.0."):
            assert torch.equal(before[key], value), key
    margins = after["stages.1.transform.synthesis.weight"].clone()
    margins[:, :, 1:9, 1:9] = 0
    assert margins.abs().sum() > 0  # the new margins grew
    assert not torch.equal(before["stages.1.encoder.body.0.weight"], after["stages.1.encoder.body.0.weight"])

    check_resumed_refit_round_trip(lambda: CliRunner().invoke(cli, [*args, "--steps", "5"]), work, out, folder, tmp_path)


def test_train_stage_refuses_bad_requests_before_any_work(tmp_path, lapped_weights):
    folder, work = photo_folder(tmp_path), tmp_path / "w"
    base = ["train-stage", str(lapped_weights), "--data", str(folder), "--model-id", "x", "--work-dir", str(work)]
    for extra, message in (
        (["--stage", "3"], "has stages 1 to 2, not 3"),
        (["--stage", "1", "--overlap", "7"], "overlaps them by 0 to 6 pixels"),
        (["--stage", "1", "--overlap", "1"], "can only grow"),
        (["--stage", "1", "--ms-ssim-share", "0.3"], "--ms-ssim-share needs --metric mixed"),
        (["--stage", "1", "--levels", "2,1"], "has 3 quality levels: give 3 level weights, not 2"),
        (["--stage", "1", "--levels", "0,0,0"], "one weight per quality level"),
        (["--stage", "1", "--levels", "some"], "one weight per quality level"),
    ):
        result = CliRunner().invoke(cli, [*base, *extra])
        assert result.exit_code == 1 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.output
    assert not work.exists()


def test_train_stage_at_the_trained_level_only(tmp_path, lapped_weights):
    folder, out = photo_folder(tmp_path), tmp_path / "tuned.safetensors"
    result = CliRunner().invoke(cli, ["train-stage", str(lapped_weights), "--data", str(folder), "--model-id", "t", "--stage", "1",
                                      "--levels", "trained", "--steps", "2", "--batch", "2", "--crop", "16",
                                      "--work-dir", str(tmp_path / "w"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    before, after = load_codec(lapped_weights)[0].state_dict(), load_codec(out)[0].state_dict()
    assert not torch.equal(before["stages.0.encoder.body.0.weight"], after["stages.0.encoder.body.0.weight"])
    with pytest.raises(ValueError, match="levels"):
        StageTuneSettings(stage=1, steps=1, levels="some")
