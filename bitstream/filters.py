"""The post-filter block at the start of every latent stage's section.

A latent stage's section is ``filter block | entropy-coded latent``. The filter
block says which per-image correction filter (codec/postfilter.py) the decoder
applies to this stage's reconstruction (in the loop since format 10: to the
image shown when this stage is the last one decoded, and to the image the next
stage refines otherwise), and carries its integer coefficients:

    mode (1 byte) | coefficients as signed exp-Golomb codes, zero bits to a whole byte

The mode byte's top bit (`TEMPERED`) is not the filter's: it says that the
coded latent after the block begins with per-channel table temperatures
(`temper.py`). The mode fixes how many coefficients follow (`COEFFICIENTS`), so the block
needs no length field; mode 0 (no filter) is the single byte 0. Exp-Golomb
codes suit these values: most coefficients are a few units, a few are tens.

Nothing here trusts the bytes: an unknown mode, a block cut short, a code with
an overlong prefix, a value out of range or nonzero padding raises
CdcFormatError.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from .errors import CdcFormatError


class FilterMode(enum.IntEnum):
    NONE = 0  #: the stage's reconstruction is shown as decoded
    OWN = 1  #: each colour channel corrected from its own 3×3 neighbourhood and from the pixel
    ALL = 2  #: each colour channel corrected from all three channels' 3×3 neighbourhoods and from the pixel


#: Coefficients a block of each mode carries (three colour channels' worth).
COEFFICIENTS = {FilterMode.NONE: 0, FilterMode.OWN: 3 * 18, FilterMode.ALL: 3 * 34}
#: Set in the mode byte when the section's coded latent is tempered (`temper.py`).
TEMPERED = 0x80
#: Longest exp-Golomb prefix accepted; coefficients stay below 2**(MAX_PREFIX - 1) in magnitude, so theirs is shorter.
MAX_PREFIX = 24


@dataclass(frozen=True)
class PostFilter:
    mode: FilterMode
    coefficients: np.ndarray  # int64 (COEFFICIENTS[mode],)

    def __post_init__(self) -> None:
        coefficients = np.asarray(self.coefficients, dtype=np.int64).reshape(-1)
        if coefficients.shape[0] != COEFFICIENTS[FilterMode(self.mode)]:
            raise ValueError(f"filter mode {self.mode} takes {COEFFICIENTS[FilterMode(self.mode)]} coefficients")
        if coefficients.size and np.abs(coefficients).max() >= 1 << (MAX_PREFIX - 1):
            raise ValueError("filter coefficient out of range")
        object.__setattr__(self, "coefficients", coefficients)


NO_FILTER = PostFilter(FilterMode.NONE, np.zeros(0, dtype=np.int64))


def encode_filter(post_filter: PostFilter, tempered: bool = False) -> bytes:
    """The filter block's bytes (`tempered`: set the mode byte's TEMPERED bit)."""
    bits: list[str] = []
    for value in post_filter.coefficients.tolist():
        code = 2 * value - 1 if value > 0 else -2 * value  # zigzag: 0, 1, -1, 2, ... -> 0, 1, 2, 3, ...
        binary = bin(code + 1)[2:]
        bits.append("0" * (len(binary) - 1) + binary)
    stream = "".join(bits)
    stream += "0" * (-len(stream) % 8)
    body = int(stream, 2).to_bytes(len(stream) // 8, "big") if stream else b""
    return bytes([int(post_filter.mode) | (TEMPERED if tempered else 0)]) + body


def decode_filter(section: bytes) -> tuple[PostFilter, int]:
    """Parse the filter block at the start of a latent section: (filter, bytes it took).
    The mode byte's TEMPERED bit is not the filter's (`is_tempered` reads it)."""
    if not section:
        raise CdcFormatError("latent section is empty (no post-filter block)")
    try:
        mode = FilterMode(section[0] & ~TEMPERED)
    except ValueError:
        raise CdcFormatError(f"unknown post-filter mode {section[0] & ~TEMPERED}") from None
    count = COEFFICIENTS[mode]
    if count == 0:
        return NO_FILTER, 1
    # Each code takes at most 2 * MAX_PREFIX + 1 bits; read no more than that many bytes.
    window = np.frombuffer(section[1 : 1 + (count * (2 * MAX_PREFIX + 1) + 7) // 8], dtype=np.uint8)
    bits = np.unpackbits(window)
    values, position = [], 0
    for _ in range(count):
        ones = np.flatnonzero(bits[position : position + MAX_PREFIX + 1])
        if ones.size == 0:
            raise CdcFormatError("post-filter block is cut short or has an overlong code")
        zeros = int(ones[0])
        end = position + 2 * zeros + 1
        if end > bits.size:
            raise CdcFormatError("post-filter block is cut short")
        code = int("".join(map(str, bits[position + zeros : end])), 2) - 1
        value = (code + 1) // 2 if code % 2 else -(code // 2)
        if abs(value) >= 1 << (MAX_PREFIX - 1):
            raise CdcFormatError("post-filter coefficient out of range")
        values.append(value)
        position = end
    used = (position + 7) // 8
    if bits[position : used * 8].any():
        raise CdcFormatError("post-filter block has nonzero padding")
    return PostFilter(mode, np.array(values, dtype=np.int64)), 1 + used


def join_latent_section(post_filter: PostFilter, latent: bytes, tempered: bool = False) -> bytes:
    """A latent stage's section payload: the filter block, then the coded latent
    (`tempered`: coded with per-channel temperatures, `entropy.encode_latent`)."""
    return encode_filter(post_filter, tempered) + latent


def split_latent_section(section: bytes) -> tuple[PostFilter, bytes, bool]:
    """Inverse of `join_latent_section`: (the stage's post-filter, its coded latent, whether that is tempered)."""
    post_filter, used = decode_filter(section)
    return post_filter, section[used:], is_tempered(section)


def is_tempered(section: bytes) -> bool:
    """Whether a latent section's coded latent begins with table temperatures (its mode byte's TEMPERED bit)."""
    return bool(section[:1]) and bool(section[0] & TEMPERED)
