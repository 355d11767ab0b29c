"""The encode/decode pipeline on the tiny model: exact latents, any size, progressive decoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cdcodec.bitstream import CdcFormatError, decode_latent, pack, truncate, unpack
from cdcodec.bitstream.filters import split_latent_section
from cdcodec.codec.model import stage_prior, symbols_to_array
from cdcodec.codec.pipeline import LoadedModel, _to_tensor, decode, encode

from imagegen import smooth_image


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def test_latents_round_trip_symbol_exactly(tiny_model):
    image = smooth_image(24, 40)
    codec = tiny_model.codec
    symbols = codec.analyse(_to_tensor(image, codec.config.multiple), codec.num_stages)
    # Without post-filters (with them, later stages refine the filtered image: test_postfilter.py)
    # and without the symbol search (test_symbol_search.py).
    parsed = unpack(encode(image, model=tiny_model, post_filters=False, search_rounds=0))
    sections = [split_latent_section(payload)[1:] for payload in parsed.payloads]  # (latent, tempered)
    for index, q in enumerate(symbols):
        expected = symbols_to_array(q)
        prior = stage_prior(symbols[index - 1] if index else None, tuple(q.shape[-2:]), q.shape[1])
        latent, tempered = sections[index]
        decoded = decode_latent(latent, codec.tables_for(index), expected.shape[1], prior, tuple(q.shape[-2:]), tempered)
        assert np.array_equal(decoded, expected)
    # The second stage's tables depend on the first stage's symbols: without them it cannot decode.
    with pytest.raises(CdcFormatError):
        latent, tempered = sections[1]
        decode_latent(latent, codec.tables_for(1), symbols_to_array(symbols[1]).shape[1], grid=tuple(symbols[1].shape[-2:]), tempered=tempered)


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 9, 3), (9, 1, 3), (17, 33, 3), (1, 1), (5, 23), (32, 32)])
def test_any_size_and_grayscale(tiny_model, shape):
    image = np.random.default_rng(3).integers(0, 256, size=shape, dtype=np.uint8)
    data = encode(image, model=tiny_model)
    out = decode(data, model=tiny_model)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert unpack(data).header.channels == (1 if len(shape) == 2 else 3)


def test_progressive_stages_and_truncation(tiny_model):
    image = smooth_image(40, 56, seed=5)
    data = encode(image, model=tiny_model)
    quality = []
    for k in (1, 2):
        by_stage = decode(data, stages=k, model=tiny_model)
        prefix = truncate(data, k)
        assert np.array_equal(decode(prefix, model=tiny_model), by_stage)
        quality.append(psnr(image, by_stage))
    assert quality[1] > quality[0]
    assert len(truncate(data, 1)) < len(data)


def test_encode_fewer_stages_equals_prefix(tiny_model):
    image = smooth_image(16, 16, seed=2)
    assert encode(image, stages=1, model=tiny_model)[:40] != b""
    one = unpack(encode(image, stages=1, model=tiny_model))
    full = unpack(encode(image, model=tiny_model))
    assert one.payloads[0] == full.payloads[0]
    with pytest.raises(ValueError):
        encode(image, stages=3, model=tiny_model)


def test_wrong_weights_digest_is_refused(tiny_model):
    data = encode(smooth_image(8, 8), model=tiny_model)
    parsed = unpack(data)
    header = parsed.header.__class__(**{**parsed.header.__dict__, "weights_digest": b"\x00" * 32})
    with pytest.raises(CdcFormatError, match="model"):
        decode(pack(header, parsed.payloads), model=tiny_model)


def test_decode_does_not_depend_on_thread_count_for_symbols(tiny_model):
    image = smooth_image(32, 32, seed=9)
    data = encode(image, model=tiny_model)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = decode(data, model=tiny_model)
        torch.set_num_threads(2)
        two = decode(data, model=tiny_model)
    finally:
        torch.set_num_threads(before)
    # Lossy stages are float networks: pixels may differ by rounding, never more.
    assert np.abs(one.astype(int) - two.astype(int)).max() <= 1


def test_unsupported_arrays_are_refused(tiny_model):
    with pytest.raises(ValueError):
        encode(np.zeros((4, 4, 3), dtype=np.float32), model=tiny_model)
    with pytest.raises(ValueError):
        encode(np.zeros((4, 4, 2), dtype=np.uint8), model=tiny_model)
    with pytest.raises(ValueError):
        encode(np.zeros((0, 4, 3), dtype=np.uint8), model=tiny_model)


def test_tune_names_a_search_distortion_and_nothing_else(tiny_model):
    image = smooth_image(8, 8)
    with pytest.raises(ValueError, match="tune must be one of model, psnr"):
        encode(image, model=tiny_model, tune="ssim")
    with pytest.raises(ValueError, match="leave search_ms_ssim_share unset"):
        encode(image, model=tiny_model, tune="psnr", search_ms_ssim_share=0.3)


def test_loaded_model_is_reusable(tiny_model):
    assert isinstance(tiny_model, LoadedModel)
    image = smooth_image(8, 8)
    assert encode(image, model=tiny_model) == encode(image, model=tiny_model)


def test_quality_levels_trade_rate_for_fidelity(tiny_model):
    image = smooth_image(48, 48, seed=11)
    levels = range(len(tiny_model.codec.config.qualities))
    files = [encode(image, quality=level, model=tiny_model) for level in levels]
    sizes = [len(f) for f in files]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    errors = [psnr(image, decode(f, model=tiny_model)) for f in files]
    assert errors[-1] > errors[0]
    assert [unpack(f).header.stages[0].param for f in files] == list(levels)
    with pytest.raises(ValueError):
        encode(image, quality=len(levels), model=tiny_model)
    # An exact stage on top of any quality level is still exact.
    assert np.array_equal(decode(encode(image, quality=0, lossless=True, model=tiny_model), model=tiny_model), image)
