"""Coding the integer residual of the exact stages (lossless and near-lossless).

The residual r = image − preview (per pixel and channel, integers) is coded
with two-sided geometric distributions, p(k) ∝ θ^|k|, from a fixed family of
GEOMETRIC_TABLES integer tables built with integer arithmetic only (so they are
identical everywhere). Each symbol's table is picked by a context known to the
decoder: the local activity of the preview around the pixel (8 buckets) and the
magnitude of the residual of the colour channels already decoded at that pixel
(4 buckets). For each (channel, context) the encoder picks the family member
that codes this image's residuals in the fewest bits and writes its index (one
byte) in front of the coded data: the model adapts to every image, and nothing
in it depends on floating-point work.

Payload: CRC32 of the final pixels (4 bytes), the table index of every
(channel, context) (channels·CONTEXTS bytes), then the ANS words.
"""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache
from math import isqrt

import constriction
import numpy as np

from .entropy import TABLE_TOTAL
from .errors import CdcFormatError

ACTIVITY_THRESHOLDS = np.array([1, 2, 4, 7, 12, 20, 34])
ACTIVITY_BUCKETS = len(ACTIVITY_THRESHOLDS) + 1
NEIGHBOUR_THRESHOLDS = np.array([1, 3, 8])
NEIGHBOUR_BUCKETS = len(NEIGHBOUR_THRESHOLDS) + 1
CONTEXTS = ACTIVITY_BUCKETS * NEIGHBOUR_BUCKETS
#: Decay of the family's tables: θ = 1 − 2^(−i/4), i = 1 .. GEOMETRIC_TABLES (from very peaked to nearly flat).
GEOMETRIC_TABLES = 48
_FIXED = 1 << 30


@lru_cache(maxsize=None)
def geometric_table(index: int, radius: int) -> np.ndarray:
    """Integer frequencies (summing to TABLE_TOTAL, each >= 1) over −radius..radius.

    Built with Python integers only: θ is a fixed-point number, θ^|k| comes from
    repeated integer multiplication, and the normalisation is integer division.
    """
    if not 0 <= index < GEOMETRIC_TABLES:
        raise ValueError("table index out of range")
    theta = _FIXED - _pow2_neg_quarter(index + 1)
    weights = [_FIXED]
    for _ in range(radius):
        weights.append(max(1, weights[-1] * theta >> 30))
    row = weights[:0:-1] + weights  # −radius .. radius
    n = len(row)
    budget = TABLE_TOTAL - n
    total = sum(row)
    freqs = [1 + w * budget // total for w in row]
    freqs[radius] += TABLE_TOTAL - sum(freqs)  # the remainder goes to zero, the likeliest value
    return np.array(freqs, dtype=np.int64)


def _pow2_neg_quarter(i: int) -> int:
    """floor(2^30 · 2^(−i/4)) with integer arithmetic only.

    With i = 4·whole + quarter: 2^30 · 2^(−quarter/4) is the integer fourth root
    of 2^(120 − quarter), and the whole powers are a shift.
    """
    whole, quarter = divmod(i, 4)
    return isqrt(isqrt(1 << (120 - quarter))) >> whole


def activity(preview: np.ndarray) -> np.ndarray:
    """Local activity bucket per pixel and channel: |horizontal| + |vertical| central differences."""
    p = preview.astype(np.int64)
    padded = np.pad(p, ((1, 1), (1, 1), (0, 0)), mode="edge")
    grad = np.abs(padded[1:-1, 2:] - padded[1:-1, :-2]) + np.abs(padded[2:, 1:-1] - padded[:-2, 1:-1])
    return np.searchsorted(ACTIVITY_THRESHOLDS, grad, side="right")


def _contexts(act: np.ndarray, residual: np.ndarray, channel: int) -> np.ndarray:
    if channel == 0:
        neighbour = np.zeros(act.shape[:2], dtype=np.int64)
    else:
        neighbour = np.abs(residual[:, :, :channel]).max(axis=2)
    return act[:, :, channel] * NEIGHBOUR_BUCKETS + np.searchsorted(NEIGHBOUR_THRESHOLDS, neighbour, side="right")


def pixel_checksum(pixels: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())


def encode_residual(residual: np.ndarray, preview: np.ndarray, radius: int, checksum: int) -> bytes:
    """Code an (H, W, C) integer residual with |values| <= radius, given the (H, W, C) preview."""
    residual = np.asarray(residual, dtype=np.int64)
    if residual.shape != preview.shape or residual.ndim != 3:
        raise ValueError("residual and preview must both be (H, W, C)")
    if residual.size and np.abs(residual).max() > radius:
        raise ValueError("residual exceeds its radius")
    act = activity(preview)
    channels = residual.shape[2]
    choices = np.zeros((channels, CONTEXTS), dtype=np.uint8)
    groups = []
    for c in range(channels):
        ctx = _contexts(act, residual, c).reshape(-1)
        values = residual[:, :, c].reshape(-1)
        for k in range(CONTEXTS):
            where = np.flatnonzero(ctx == k)
            if where.size:
                choices[c, k] = _best_table(values[where], radius)
                groups.append((int(choices[c, k]), values[where]))
    coder = constriction.stream.stack.AnsCoder()
    for index, values in reversed(groups):
        coder.encode_reverse((values + radius).astype(np.int32), _model(index, radius))
    words = coder.get_compressed().astype("<u4").tobytes()
    return struct.pack("<I", checksum) + choices.tobytes() + words


def decode_residual(payload: bytes, preview: np.ndarray, radius: int) -> tuple[np.ndarray, int]:
    """Inverse of `encode_residual`: (residual, pixel checksum)."""
    channels = preview.shape[2]
    head = 4 + channels * CONTEXTS
    if len(payload) < head or (len(payload) - head) % 4:
        raise CdcFormatError("exact-stage payload has the wrong size")
    (checksum,) = struct.unpack_from("<I", payload, 0)
    choices = np.frombuffer(payload, dtype=np.uint8, count=channels * CONTEXTS, offset=4).reshape(channels, CONTEXTS)
    if (choices >= GEOMETRIC_TABLES).any():
        raise CdcFormatError("exact-stage payload names an unknown table")
    words = np.frombuffer(payload, dtype="<u4", offset=head).astype(np.uint32)
    if words.size and words[-1] == 0:
        raise CdcFormatError("exact-stage payload has trailing padding")
    try:
        coder = constriction.stream.stack.AnsCoder(words)
    except Exception as exc:
        raise CdcFormatError(f"exact-stage payload is malformed ({exc})") from None
    act = activity(preview)
    residual = np.zeros(preview.shape, dtype=np.int64)
    try:
        for c in range(channels):
            ctx = _contexts(act, residual, c).reshape(-1)
            plane = np.zeros(ctx.shape[0], dtype=np.int64)
            for k in range(CONTEXTS):
                where = np.flatnonzero(ctx == k)
                if where.size:
                    decoded = coder.decode(_model(int(choices[c, k]), radius), where.size)
                    plane[where] = np.asarray(decoded, dtype=np.int64) - radius
            residual[:, :, c] = plane.reshape(preview.shape[:2])
    except Exception as exc:
        raise CdcFormatError(f"exact-stage payload is corrupt ({exc})") from None
    if not coder.is_empty():
        raise CdcFormatError("exact-stage payload has data left over after decoding")
    return residual, checksum


def _best_table(values: np.ndarray, radius: int) -> int:
    hist = np.bincount(values + radius, minlength=2 * radius + 1)
    costs = [-(hist * np.log2(geometric_table(i, radius) / TABLE_TOTAL)).sum() for i in range(GEOMETRIC_TABLES)]
    return int(np.argmin(costs))


@lru_cache(maxsize=512)
def _model(index: int, radius: int):
    return constriction.stream.model.Categorical(geometric_table(index, radius).astype(np.float64) / TABLE_TOTAL, perfect=False)
