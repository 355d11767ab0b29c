"""The adaptive post-filter: its block in the file, its fit, and the encoder's choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cdcodec.bitstream import CdcFormatError, encode_latent, unpack
from cdcodec.bitstream.describe import describe
from cdcodec.bitstream.filters import (
    COEFFICIENTS,
    MAX_PREFIX,
    NO_FILTER,
    FilterMode,
    PostFilter,
    decode_filter,
    encode_filter,
    join_latent_section,
    split_latent_section,
)
from cdcodec.codec import postfilter
from cdcodec.codec.model import stage_prior, symbols_to_array
from cdcodec.codec.pipeline import _InLoopFilter, _to_pixels, _to_tensor, decode, encode

from imagegen import smooth_image

LIMIT = (1 << (MAX_PREFIX - 1)) - 1


@st.composite
def filters(draw):
    mode = draw(st.sampled_from(list(FilterMode)))
    values = draw(st.lists(st.integers(-LIMIT, LIMIT), min_size=COEFFICIENTS[mode], max_size=COEFFICIENTS[mode]))
    return PostFilter(mode, np.array(values, dtype=np.int64))


@settings(max_examples=60, deadline=None)
@given(filters(), st.binary(max_size=8), st.booleans())
def test_filter_block_round_trips_and_reports_its_length(post_filter, latent, tempered):
    section = join_latent_section(post_filter, latent, tempered)
    parsed, rest, flag = split_latent_section(section)
    assert flag is tempered
    assert parsed.mode == post_filter.mode
    assert np.array_equal(parsed.coefficients, post_filter.coefficients)
    assert rest == latent
    assert decode_filter(section)[1] == len(encode_filter(post_filter, tempered))


def inputs(reconstruction: np.ndarray, estimate: np.ndarray | None = None, previous: np.ndarray | None = None):
    """Filter inputs whose refine-CNN and stage shares are zero unless given."""
    reconstruction = np.asarray(reconstruction, dtype=np.float64)
    return postfilter.FilterInputs(
        reconstruction,
        reconstruction if estimate is None else estimate,
        reconstruction if previous is None else previous,
    )


def test_small_coefficients_take_few_bits():
    block = encode_filter(PostFilter(FilterMode.ALL, np.zeros(COEFFICIENTS[FilterMode.ALL], dtype=np.int64)))
    assert len(block) == 1 + (COEFFICIENTS[FilterMode.ALL] + 7) // 8  # one bit per zero
    assert encode_filter(NO_FILTER) == b"\x00"


@pytest.mark.parametrize(
    "section, message",
    [
        (b"", "empty"),
        (b"\x07", "unknown post-filter mode"),
        (b"\x01", "cut short"),
        (b"\x01" + b"\x00" * 40, "overlong"),
        (b"\x01" + b"\xff" * 4 + b"\x80", "cut short"),
        # 24 zeros and a 25-bit code: a magnitude near 2**24, beyond the coefficients' range.
        (b"\x01" + b"\x00" * 3 + b"\xff" * 4, "out of range"),
    ],
)
def test_bad_filter_blocks_are_rejected(section, message):
    with pytest.raises(CdcFormatError, match=message):
        decode_filter(section)


def test_nonzero_padding_is_rejected():
    block = bytearray(encode_filter(PostFilter(FilterMode.OWN, np.zeros(54, dtype=np.int64))))
    assert len(block) == 1 + 7  # 54 one-bit codes, then 2 padding bits
    block[-1] |= 0x01
    with pytest.raises(CdcFormatError, match="padding"):
        decode_filter(bytes(block))


def test_out_of_range_coefficients_are_refused():
    with pytest.raises(ValueError):
        PostFilter(FilterMode.OWN, np.full(54, LIMIT + 1))
    with pytest.raises(ValueError):
        PostFilter(FilterMode.OWN, np.zeros(34))


def test_fit_undoes_a_colour_and_contrast_change_and_reduces_a_blur():
    original = smooth_image(40, 56, seed=4).astype(np.float64)
    shifted = 0.85 * original + np.array([12.0, -6.0, 3.0])  # the colour matrix and constant undo this exactly
    blurred = original.copy()
    blurred[:, 1:-1] = (original[:, :-2] + original[:, 1:-1] + original[:, 2:]) / 3  # a 3×3 filter only partly
    for decoded, ratio in ((shifted, 0.001), (blurred, 0.85)):
        before = np.mean((decoded - original) ** 2)
        for mode in (FilterMode.OWN, FilterMode.ALL):
            after = np.mean((postfilter.apply(inputs(decoded), postfilter.fit(inputs(decoded), original, mode)) - original) ** 2)
            assert after < ratio * before


def test_fit_rescales_what_the_refine_cnn_added():
    original = smooth_image(40, 56, seed=9).astype(np.float64)
    estimate = original + np.random.default_rng(1).normal(0, 6, original.shape)
    # A refine CNN that removed 1.5 times the estimate's error (too strong a correction):
    reconstruction = estimate - 1.5 * (estimate - original)
    before = np.mean((reconstruction - original) ** 2)
    for mode in (FilterMode.OWN, FilterMode.ALL):
        filtered = postfilter.apply(inputs(reconstruction, estimate), postfilter.fit(inputs(reconstruction, estimate), original, mode))
        assert np.mean((filtered - original) ** 2) < 0.01 * before


def test_blocks_of_rows_do_not_change_the_result(monkeypatch):
    original = smooth_image(37, 21, seed=5).astype(np.float64)
    decoded = original * 0.9 + np.random.default_rng(0).normal(0, 3, original.shape)
    previous = original + 5.0
    whole = postfilter.fit(inputs(decoded, previous=previous), original, FilterMode.ALL)
    whole_out = postfilter.apply(inputs(decoded, previous=previous), whole)
    monkeypatch.setattr(postfilter, "CHUNK_PIXELS", 5 * 21)
    pieces = postfilter.fit(inputs(decoded, previous=previous), original, FilterMode.ALL)
    assert np.array_equal(pieces.coefficients, whole.coefficients)
    assert np.allclose(postfilter.apply(inputs(decoded, previous=previous), pieces), whole_out)


def test_choose_sends_nothing_when_nothing_is_gained():
    image = smooth_image(32, 32, seed=6).astype(np.float64)
    assert postfilter.choose(inputs(image), image, lam=100.0, pixels=32 * 32) is NO_FILTER


def test_choose_sends_a_filter_that_pays():
    original = smooth_image(64, 64, seed=7).astype(np.float64)
    decoded = 0.8 * original + 20
    chosen = postfilter.choose(inputs(decoded), original, lam=100.0, pixels=64 * 64)
    assert chosen.mode != FilterMode.NONE
    shown = np.clip(np.round(postfilter.apply(inputs(decoded), chosen)), 0, 255)
    assert np.mean((shown - original) ** 2) < np.mean((np.round(decoded) - original) ** 2)


def test_encoder_filters_only_where_the_decoded_image_gets_closer(tiny_model):
    image = smooth_image(48, 64, seed=8)
    with_filters = encode(image, model=tiny_model)
    without = encode(image, model=tiny_model, post_filters=False)
    assert all(split_latent_section(p)[0] is NO_FILTER for p in unpack(without).payloads)
    sent = 0
    for stages in range(1, len(unpack(with_filters).payloads) + 1):
        error_with = np.mean((decode(with_filters, stages=stages, model=tiny_model).astype(float) - image) ** 2)
        error_without = np.mean((decode(without, stages=stages, model=tiny_model).astype(float) - image) ** 2)
        post_filter = split_latent_section(unpack(with_filters).payloads[stages - 1])[0]
        if post_filter.mode == FilterMode.NONE:
            if not sent:  # no filter so far, in the loop or after it: the same image
                assert error_with == error_without
        else:
            sent += 1
            assert error_with < error_without
    assert sent, "the tiny untrained model leaves linear errors; some stage should carry a filter"
    stages = describe(with_filters)["stages"]
    assert all(stage["post_filter"] in ("none", "own", "all") and stage["post_filter_bytes"] >= 1 for stage in stages)


def test_later_stages_refine_the_filtered_image(tiny_model):
    """Format 10: stage 1's filter is in the loop. The encoder codes stage 2 against
    stage 1's filtered image, and the decoder adds stage 2 to that image."""
    image = smooth_image(96, 96, seed=0)
    data = encode(image, model=tiny_model, search_rounds=0, temper=False)  # rounded symbols, as analyse gives them, on the shipped tables
    payloads = unpack(data).payloads
    filters = [split_latent_section(p)[0] for p in payloads]
    assert filters[0].mode != FilterMode.NONE, "this image should make stage 1 send a filter"
    codec = tiny_model.codec
    x = _to_tensor(image, codec.config.multiple)
    from_file = _InLoopFilter(96, 96, lambda index, images: filters[index])
    in_loop, unfiltered = codec.analyse(x, 2, loop_filter=from_file), codec.analyse(x, 2)

    def stage_two_latent(symbols):
        grid = tuple(symbols[1].shape[-2:])
        prior = stage_prior(symbols[0], grid, symbols[1].shape[1])
        return encode_latent(symbols_to_array(symbols[1]), codec.tables_for(1), prior, grid)

    assert stage_two_latent(in_loop) == split_latent_section(payloads[1])[1]
    assert not torch.equal(in_loop[1], unfiltered[1])
    # Decoding: stage 1's filtered image, then stage 2 on top of it, then stage 2's filter.
    shown = decode(data, model=tiny_model)
    replay = _InLoopFilter(96, 96, lambda index, images: filters[index])
    codec.synthesise_images(in_loop, x, loop_filter=replay)
    assert np.array_equal(shown, _to_pixels(replay.shown, 3))
    last = codec.synthesise_images(in_loop, x)[-1]  # stage 2 on the unfiltered stage-1 image
    after_only = _InLoopFilter(96, 96, lambda index, images: filters[1])
    after_only(1, last)
    assert not np.array_equal(shown, _to_pixels(after_only.shown, 3))


def test_exact_files_carry_no_post_filters(tiny_model):
    image = smooth_image(48, 64, seed=8)
    data = encode(image, model=tiny_model, lossless=True)
    latents = unpack(data).payloads[:-1]
    assert latents and all(split_latent_section(p)[0] is NO_FILTER for p in latents)
    assert np.array_equal(decode(data, model=tiny_model), image)


def test_choose_refuses_a_filter_that_lowers_ms_ssim(monkeypatch):
    original = smooth_image(200, 200, seed=10).astype(np.float64)
    decoded = 0.8 * original + 20
    assert postfilter.choose(inputs(decoded), original, lam=100.0, pixels=200 * 200) is not NO_FILTER
    # Pretend every filtered image scores worse in MS-SSIM than the unfiltered one.
    scores = iter([0.9] + [0.5] * 4)
    monkeypatch.setattr(postfilter, "ms_ssim", lambda original, shown: next(scores))
    assert postfilter.choose(inputs(decoded), original, lam=100.0, pixels=200 * 200) is NO_FILTER
