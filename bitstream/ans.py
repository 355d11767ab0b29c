"""constriction's ANS coder as bytes: the word layout and the checks every payload gets.

ANS is a stack: whatever is encoded last is decoded first. Its output is a
sequence of 32-bit words, stored little-endian. On reading, a payload must be
whole words, must not end in a zero word (constriction never writes one, so one
means padding or damage), and must be used up exactly by the decoder.
"""

from __future__ import annotations

import constriction
import numpy as np

from .errors import CdcFormatError


def new_encoder():
    return constriction.stream.stack.AnsCoder()


def to_bytes(coder) -> bytes:
    return coder.get_compressed().astype("<u4").tobytes()


def open_decoder(payload: bytes, what: str):
    """A decoder over `payload`, or CdcFormatError naming `what` the payload is."""
    if len(payload) % 4:
        raise CdcFormatError(f"{what} is not a whole number of 32-bit words")
    words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    if words.size and words[-1] == 0:
        raise CdcFormatError(f"{what} has trailing padding")
    try:
        return constriction.stream.stack.AnsCoder(words)
    except Exception as exc:  # constriction rejects malformed word streams with its own errors
        raise CdcFormatError(f"{what} is malformed ({exc})") from None


def check_exhausted(coder, what: str) -> None:
    if not coder.is_empty():
        raise CdcFormatError(f"{what} has data left over after decoding")
