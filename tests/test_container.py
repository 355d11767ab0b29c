"""The .cdc container: exact round trips, progressive prefixes, and hostile bytes."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdcodec.bitstream import CdcFormatError, Header, StageInfo, StageKind, describe, pack, truncate, unpack
from cdcodec.bitstream.container import FORMAT_VERSION, LAST_COMMIT_READING, pack_header, unpack_header

DIGEST = bytes(range(32))


def make_header(**overrides) -> Header:
    fields = dict(
        width=17,
        height=33,
        channels=3,
        model_id="cdc-test",
        weights_digest=DIGEST,
        stages=(StageInfo(StageKind.LATENT, 0), StageInfo(StageKind.LATENT, 1), StageInfo(StageKind.LATENT, 2)),
    )
    fields.update(overrides)
    return Header(**fields)


# Latent payloads start with a post-filter block (b"\x00": none); the container does not look inside.
PAYLOADS = (b"\x00\x02\x03\x04", b"\x00", b"\x00" + b"abcdefgh" * 5)


def sample_file() -> bytes:
    return pack(make_header(), PAYLOADS)


headers = st.builds(
    Header,
    width=st.integers(1, 1 << 16),
    height=st.integers(1, 4096),
    channels=st.sampled_from([1, 3]),
    model_id=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=64),
    weights_digest=st.binary(min_size=32, max_size=32),
    stages=st.lists(
        st.builds(StageInfo, st.sampled_from(list(StageKind)), st.integers(0, 0xFFFF)), min_size=1, max_size=16
    ).map(tuple),
)


@given(headers)
def test_header_round_trip(header):
    data = pack_header(header)
    parsed, size = unpack_header(data)
    assert parsed == header
    assert size == len(data)


@given(st.lists(st.binary(max_size=64), min_size=1, max_size=3))
def test_file_round_trip(payloads):
    data = pack(make_header(), payloads)
    parsed = unpack(data)
    assert parsed.payloads == tuple(payloads)
    assert parsed.stages_present == len(payloads)
    assert parsed.header_size + sum(parsed.section_sizes) == len(data)


def test_every_prefix_is_a_valid_file_or_rejected_cleanly():
    data = sample_file()
    parsed = unpack(data)
    boundaries = {parsed.header_size + sum(parsed.section_sizes[:k]): k for k in range(1, 4)}
    for cut in range(len(data) + 1):
        prefix = data[:cut]
        if cut in boundaries:
            assert unpack(prefix).stages_present == boundaries[cut]
        else:
            with pytest.raises(CdcFormatError):
                unpack(prefix)


def test_truncate_is_a_byte_prefix():
    data = sample_file()
    for k in (1, 2, 3):
        cut = truncate(data, k)
        assert data.startswith(cut)
        assert unpack(cut).payloads == PAYLOADS[:k]
    with pytest.raises(ValueError):
        truncate(data, 4)
    with pytest.raises(ValueError):
        truncate(truncate(data, 1), 2)


def test_flipped_bytes_are_detected():
    data = sample_file()
    for pos in range(len(data)):
        damaged = bytearray(data)
        damaged[pos] ^= 0x40
        with pytest.raises(CdcFormatError):
            unpack(bytes(damaged))


def test_bumped_version_is_refused():
    data = bytearray(sample_file())
    struct.pack_into("<H", data, 4, FORMAT_VERSION + 1)
    with pytest.raises(CdcFormatError, match="version"):
        unpack(bytes(data))


def test_an_older_version_names_the_commit_that_reads_it():
    data = bytearray(sample_file())
    struct.pack_into("<H", data, 4, FORMAT_VERSION - 1)
    with pytest.raises(CdcFormatError, match=f"version {FORMAT_VERSION - 1} .*git commit {LAST_COMMIT_READING[FORMAT_VERSION - 1]}"):
        unpack(bytes(data))


def test_trailing_garbage_is_refused():
    with pytest.raises(CdcFormatError):
        unpack(sample_file() + b"\x00")


def test_lying_length_field_is_bounded():
    header = pack_header(make_header())
    section = b"STG\x01" + struct.pack("<I", 0xFFFFFFF0) + b"tiny"
    with pytest.raises(CdcFormatError, match="truncated"):
        unpack(header + section)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_format_errors(blob):
    for candidate in (blob, b"\x89CDC" + blob, sample_file()[:40] + blob):
        try:
            unpack(candidate)
        except CdcFormatError:
            pass


def test_header_validation():
    with pytest.raises(ValueError):
        make_header(width=0)
    with pytest.raises(ValueError):
        make_header(channels=2)
    with pytest.raises(ValueError):
        make_header(stages=())
    with pytest.raises(ValueError):
        make_header(model_id="")


def test_describe_reports_real_sizes():
    data = sample_file()
    desc = describe(data)
    assert desc["file_bytes"] == len(data)
    assert desc["stages_present"] == 3
    assert desc["stages"][-1]["cumulative_bytes"] == len(data)
    assert sum(s["bytes"] for s in desc["stages"]) + desc["header_bytes"] == len(data)
    latent = [s for s in desc["stages"] if s["kind"] == "latent"]
    assert latent and all(s["post_filter"] == "none" and s["post_filter_bytes"] == 1 for s in latent)
