"""Exact stages: bit-exact lossless, guaranteed near-lossless, independent of threads, checksummed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cdcodec.bitstream import CdcFormatError, StageKind, describe, pack, unpack
from cdcodec.bitstream.residual import ERROR_TABLES, OFFSET_STEPS, TABLE_TOTAL, error_table
from cdcodec.bitstream.residual import residual_radius
from cdcodec.codec.exact import quantize_residual, reconstruct
from cdcodec.codec.pipeline import decode, encode
from imagegen import smooth_image


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 13, 3), (17, 33, 3), (9, 5), (40, 56, 3)])
def test_lossless_round_trip_is_exact(tiny_model, shape):
    image = smooth_image(shape[0], shape[1], channels=3 if len(shape) == 3 else 1, seed=sum(shape))
    data = encode(image, lossless=True, model=tiny_model)
    assert np.array_equal(decode(data, model=tiny_model), image)
    assert unpack(data).header.stages[-1].kind == StageKind.LOSSLESS


@pytest.mark.parametrize("bound", [1, 2, 3, 7])
def test_near_lossless_error_is_bounded(tiny_model, bound):
    rng = np.random.default_rng(bound)
    image = rng.integers(0, 256, size=(21, 30, 3), dtype=np.uint8)
    image[:5] = 0
    image[-5:] = 255
    data = encode(image, max_error=bound, model=tiny_model)
    out = decode(data, model=tiny_model)
    assert np.abs(out.astype(int) - image.astype(int)).max() <= bound
    last = describe(data)["stages"][-1]
    assert (last["kind"], last["param"]) == ("near_lossless", bound)


def test_lossy_stages_still_decode_from_an_exact_file(tiny_model):
    image = smooth_image(24, 24, seed=3)
    exact_file = encode(image, lossless=True, model=tiny_model)
    lossy_file = encode(image, model=tiny_model, search_rounds=0)  # as an exact file's lossy stages: not searched
    for k in (1, 2):
        assert np.array_equal(decode(exact_file, stages=k, model=tiny_model), decode(lossy_file, stages=k, model=tiny_model))
    assert np.array_equal(decode(exact_file, stages=3, model=tiny_model), image)


def test_exact_decode_is_identical_for_any_thread_count(tiny_model):
    image = smooth_image(48, 40, seed=8)
    data = encode(image, max_error=1, model=tiny_model)
    before = torch.get_num_threads()
    try:
        outputs = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            outputs.append(decode(data, model=tiny_model))
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(outputs[0], outputs[1])


def test_exact_decode_evaluates_no_torch_network(tiny_model, monkeypatch):
    """The exact path reads the synthesis weights but runs no float network, so its pixels
    cannot depend on the device (CPU or GPU), the BLAS library or the thread count."""
    image = smooth_image(20, 28, seed=5)
    lossless = encode(image, lossless=True, model=tiny_model)
    near = encode(image, max_error=2, model=tiny_model)
    near_pixels = decode(near, model=tiny_model)

    def refuse(*args, **kwargs):
        raise AssertionError("a torch network ran")

    monkeypatch.setattr(torch.nn.Module, "__call__", refuse)
    assert np.array_equal(decode(lossless, model=tiny_model), image)
    assert np.array_equal(decode(near, model=tiny_model), near_pixels)
    with pytest.raises(AssertionError, match="torch network ran"):
        decode(lossless, stages=1, model=tiny_model)  # a lossy stage does run one


def test_checksum_mismatch_is_detected(tiny_model):
    image = smooth_image(16, 16, seed=1)
    parsed = unpack(encode(image, lossless=True, model=tiny_model))
    payload = bytearray(parsed.payloads[-1])
    payload[0] ^= 1  # the stored pixel CRC (section CRC recomputed by pack)
    with pytest.raises(CdcFormatError, match="checksum"):
        decode(pack(parsed.header, [*parsed.payloads[:-1], bytes(payload)]), model=tiny_model)


def test_options_are_validated(tiny_model):
    image = smooth_image(8, 8)
    with pytest.raises(ValueError):
        encode(image, lossless=True, max_error=1, model=tiny_model)
    with pytest.raises(ValueError):
        encode(image, max_error=0, model=tiny_model)


@settings(max_examples=200)
@given(st.integers(-255, 255), st.integers(0, 255), st.integers(0, 20))
def test_quantized_residual_reconstructs_within_bound(residual, preview, bound):
    original = preview + residual
    if not 0 <= original <= 255:
        return
    q = quantize_residual(np.array([[[residual]]]), bound)
    assert abs(int(q[0, 0, 0])) <= residual_radius(bound)
    out = reconstruct(np.array([[[preview]]], dtype=np.uint8), q, bound)
    assert abs(int(out[0, 0, 0]) - original) <= bound


def test_error_tables_are_valid_integer_tables():
    for index in (0, 7, 64, 200, ERROR_TABLES - 1):
        for offset in range(OFFSET_STEPS):
            table = error_table(index, 20, offset)
            assert table.dtype == np.int64 and table.sum() == TABLE_TOTAL and table.min() >= 1
        centred = error_table(index, 20, 0)
        assert centred.argmax() == 20 and np.array_equal(centred, centred[::-1])
        # centred at +1/2: the values 0 and +1 are (up to the remainder at 0) equally likely,
        # and the table is mirrored about 1/2 apart from its outermost value
        half = error_table(index, 20, OFFSET_STEPS - 1)
        assert 0 <= int(half[20]) - int(half[21]) <= 41
        assert np.array_equal(half[22:], half[1:20][::-1])


def test_error_tables_grow_wider_with_scale():
    spread = [np.abs(np.arange(-40, 41)) @ error_table(i, 40, 0) for i in range(0, 64, 8)]
    assert spread == sorted(spread)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_random_exact_payloads_raise_only_format_errors(blob):
    from cdcodec.bitstream.residual import decode_residual

    preview = np.full((3, 4, 3), 128, dtype=np.uint8)
    try:
        residual, _ = decode_residual(blob, preview, 255)
    except CdcFormatError:
        return
    assert residual.shape == preview.shape


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 40), st.integers(1, 40), st.sampled_from([1, 3]), st.integers(0, 3), st.integers(0, 2**32 - 1)
)
def test_residual_coder_round_trips_any_shape_and_bound(height, width, channels, bound, seed):
    """Encoder and decoder build the same predictions, classes and contexts at every size,
    including images smaller than the coarsest lattice, where neighbours are mirrored."""
    from cdcodec.bitstream.residual import decode_residual, encode_residual

    rng = np.random.default_rng(seed)
    original = rng.integers(0, 256, size=(height, width, channels))
    preview = np.clip(original + rng.integers(-20, 21, size=original.shape), 0, 255).astype(np.uint8)
    q = quantize_residual(original - preview.astype(np.int64), bound)
    payload = encode_residual(q, preview, bound, checksum=1234)
    decoded, checksum = decode_residual(payload, preview, bound)
    assert checksum == 1234
    assert np.array_equal(decoded, q)


def test_exact_payload_with_a_false_side_length_is_refused():
    from cdcodec.bitstream.residual import decode_residual, encode_residual

    rng = np.random.default_rng(5)
    preview = rng.integers(0, 256, size=(12, 12, 3)).astype(np.uint8)
    payload = bytearray(encode_residual(np.zeros((12, 12, 3), dtype=np.int64), preview, 0, checksum=0))
    for side_length in (len(payload), len(payload) - 9, 0):
        payload[4:8] = side_length.to_bytes(4, "little")
        with pytest.raises(CdcFormatError):
            decode_residual(bytes(payload), preview, 0)


def test_a_payload_written_by_an_earlier_build_still_decodes():
    """Files must decode the same on every machine and in every later build of format 6.

    The fixture was written by the format-6 encoder when that format was made
    (a 40×33 RGB residual over a formula preview, checksum field 1234, large
    enough that nine groups use the bias correction; format 5 had no bias
    correction and stored the side information uncompressed). If this fails,
    the exact stage's decoding changed: that needs a new FORMAT_VERSION.
    """
    from pathlib import Path

    from cdcodec.bitstream.residual import decode_residual

    y, x, c = np.meshgrid(np.arange(40), np.arange(33), np.arange(3), indexing="ij")
    original = (y * y * 7 + x * 13 + c * 29 + (x * y) % 17 + (x * 7 + y * 3) // 5 * c) % 256
    preview = (37 * y + 11 * x + 50 * c) % 256
    payload = (Path(__file__).parent / "fixtures" / "exact-payload-v6.bin").read_bytes()
    residual, checksum = decode_residual(payload, preview, 0)
    assert checksum == 1234
    assert np.array_equal(residual, original - preview)


def test_neighbour_patterns_put_each_neighbour_in_its_band():
    """Bands around the prediction (in 1/64 of a level): ≤ −96, ≤ −32, ≤ 32, ≤ 96, above;
    the pattern reads them as base-5 digits, nearest neighbour first."""
    from cdcodec.bitstream.residual import neighbour_patterns

    sums = np.array([64 * 10])  # the prediction: 10 levels
    own = [np.array([v]) for v in (8, 9, 10, 12)]  # 2 below, 1 below, equal, 2 above
    pattern, agreement = neighbour_patterns(own, sums)
    assert pattern.tolist() == [((0 * 5 + 1) * 5 + 2) * 5 + 4]
    assert agreement.tolist() == [0]  # one neighbour within half a level: bucket 0–1
    pattern, agreement = neighbour_patterns([np.array([10])] * 4, sums)
    assert pattern.tolist() == [2 * 125 + 2 * 25 + 2 * 5 + 2] and agreement.tolist() == [2]


def test_bias_correction_pays_where_errors_follow_the_neighbour_pattern(monkeypatch):
    """On 4×4 blocks of random levels (as from nearest-neighbour upsampling) a linear
    predictor averages across block edges; which neighbours sit above or below the
    prediction says on which side a pixel lies. The encoder's corrections make the
    payload smaller than the same coder with them switched off."""
    from cdcodec.bitstream import residual

    coarse = np.random.default_rng(3).integers(60, 200, size=(16, 16, 3))
    q = np.kron(coarse, np.ones((4, 4, 1), dtype=np.int64)) - 128
    preview = np.full(q.shape, 128, dtype=np.uint8)
    with_bias = residual.encode_residual(q, preview, 0, checksum=0)
    assert np.array_equal(residual.decode_residual(with_bias, preview, 0)[0], q)
    monkeypatch.setattr(residual, "_fit_corrections", lambda pattern, errors: np.zeros(len(residual._corrected_patterns(pattern)), dtype=np.int64))
    without = residual.encode_residual(q, preview, 0, checksum=0)
    assert np.array_equal(residual.decode_residual(without, preview, 0)[0], q)
    assert len(with_bias) < 0.95 * len(without)


def test_side_information_that_inflates_too_far_is_refused():
    import struct
    import zlib

    from cdcodec.bitstream.residual import decode_residual

    preview = np.full((4, 4, 1), 128, dtype=np.uint8)
    bomb = zlib.compress(bytes(10**6), 9)
    with pytest.raises(CdcFormatError):
        decode_residual(struct.pack("<II", 0, len(bomb)) + bomb + bytes(8), preview, 0)


@pytest.mark.parametrize("bound", [0, 1, 3])
def test_red_and_blue_at_the_opposite_extreme_from_green_round_trip(bound):
    """Red and blue are coded as differences from green, which reach twice the residual's range."""
    from cdcodec.bitstream.residual import decode_residual, encode_residual

    original = np.zeros((6, 5, 3), dtype=np.int64)
    original[:, :, 0] = original[:, :, 2] = 255
    original[::2, :, :] = 255 - original[::2, :, :]
    preview = (255 - original).astype(np.uint8)
    q = quantize_residual(original - preview.astype(np.int64), bound)
    assert np.abs(q[:, :, 0] - q[:, :, 1]).max() == 2 * residual_radius(bound)
    decoded, _ = decode_residual(encode_residual(q, preview, bound, checksum=0), preview, bound)
    assert np.array_equal(decoded, q)
