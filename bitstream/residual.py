"""Coding the integer residual of the exact stages (lossless and near-lossless).

The residual r = image − preview (per pixel and channel, integers) is coded
coarse to fine (PHASES): a sparse lattice first, predicted as 0, then ever
finer lattices whose every residual is predicted as the rounded mean of its
already decoded neighbours (diagonal ones at lattice centres, the four direct
ones at edge midpoints), as in interlaced and pyramid lossless coders.
Channels go green first; red and blue code their prediction error minus green's,
since the residuals of the three channels move together.

Errors are coded with two-sided geometric distributions, p(k) ∝ θ^|k|, from a
fixed family of GEOMETRIC_TABLES integer tables built with integer arithmetic
only (identical everywhere). A symbol's table is picked by a context known to
the decoder: an activity bucket (the preview's local gradient in the first phase,
the spread of the neighbours' residuals later) and, for red and blue, the size
of green's error at that pixel. For each (phase, channel, context) the encoder
picks the family member that codes this image in the fewest bits and writes its
index (one byte) before the coded data: the model adapts to every image, and
nothing in it depends on floating-point work.

Predictions at a pixel may also use the preview's own detail there: for each
(phase, channel) the encoder picks a weight w in 0..4 (quarters) and predicts the
residual as the neighbours' mean residual minus w/4 of (preview − its neighbours'
mean); w = 0 interpolates the residual, w = 4 interpolates the pixels.

Payload: CRC32 of the final pixels (4 bytes), the detail weight of every
(phase, channel) (len(PHASES)·channels bytes), the table index of every
(phase, channel, context) (len(PHASES)·channels·CONTEXTS bytes), then the ANS words.
"""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache
from math import isqrt

import constriction
import numpy as np

from . import ans
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
PAYLOAD = "exact-stage payload"


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


#: Pixels are coded coarse to fine: first the lattice of every 2^LEVELS-th pixel,
#: then, for strides 2^LEVELS .. 2, the centres (diagonal neighbours known), then
#: the edge midpoints (four direct neighbours known). Each phase is
#: (row offset, column offset, stride, neighbour offsets).
LEVELS = 3


def _phases() -> tuple[tuple[int, int, int, tuple[tuple[int, int], ...]], ...]:
    stride = 1 << LEVELS
    phases = [(0, 0, stride, ())]
    while stride > 1:
        h = stride // 2
        diagonal = ((-h, -h), (-h, h), (h, -h), (h, h))
        direct = ((0, -h), (0, h), (-h, 0), (h, 0))
        phases += [(h, h, stride, diagonal), (0, h, stride, direct), (h, 0, stride, direct)]
        stride = h
    return tuple(phases)


PHASES = _phases()
#: Green first: the other channels code the difference to green's prediction error.
CHANNEL_ORDER = {1: (0,), 3: (1, 0, 2)}


def activity(preview: np.ndarray) -> np.ndarray:
    """Local activity bucket per pixel and channel: |horizontal| + |vertical| central differences."""
    p = preview.astype(np.int64)
    padded = np.pad(p, ((1, 1), (1, 1), (0, 0)), mode="edge")
    grad = np.abs(padded[1:-1, 2:] - padded[1:-1, :-2]) + np.abs(padded[2:, 1:-1] - padded[:-2, 1:-1])
    return np.searchsorted(ACTIVITY_THRESHOLDS, grad, side="right")


#: Candidate weights (in quarters) of the preview's own detail in a prediction: 0 predicts
#: the residual from the neighbours' residuals, 4 predicts the pixel from the neighbours' pixels.
DETAIL_WEIGHTS = 5


def _neighbour_sums(plane: np.ndarray, ys, xs, neighbours):
    height, width = plane.shape
    total = np.zeros((ys.size, xs.size), dtype=np.int64)
    count = np.zeros_like(total)
    values = []
    for dy, dx in neighbours:
        ny, nx = ys + dy, xs + dx
        valid = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        v = np.where(valid, plane[np.clip(ny, 0, height - 1), np.clip(nx, 0, width - 1)], 0)
        values.append((v, valid))
        total += v
        count += valid
    return total, np.maximum(count, 1), values


def _neighbourhood(residual, preview, phase: int, channel: int):
    """What the predictions of one phase of one channel are made from (earlier phases only).

    Returns None for the first phase (no neighbours; its activity is the
    preview's), else (neighbour residual sum, count, neighbour values, preview detail).
    """
    y0, x0, stride, neighbours = PHASES[phase]
    if not neighbours:
        return None
    height, width = residual.shape[:2]
    ys = np.arange(y0, height, stride)[:, None]
    xs = np.arange(x0, width, stride)[None, :]
    total, count, values = _neighbour_sums(residual[:, :, channel], ys, xs, neighbours)
    p_total, _, _ = _neighbour_sums(preview[:, :, channel].astype(np.int64), ys, xs, neighbours)
    detail = count * preview[y0::stride, x0::stride, channel].astype(np.int64) - p_total
    return total, count, values, detail


def _prediction(hood, preview_activity, phase: int, channel: int, unit: int, weight: int):
    """Prediction and activity bucket of one phase of one channel.

    The prediction is the neighbours' mean residual minus `weight`/4 of the
    preview's detail at the pixel (its value minus its neighbours' mean), in
    residual units of `unit` = 2·D + 1 grey levels; all in integer arithmetic.
    """
    if hood is None:
        y0, x0, stride, _ = PHASES[phase]
        bucket = preview_activity[y0::stride, x0::stride, channel]
        return np.zeros(bucket.shape, dtype=np.int64), bucket
    total, count, values, detail = hood
    numerator = 4 * unit * total - weight * detail
    denominator = 4 * unit * count
    pred = (2 * numerator + denominator) // (2 * denominator)
    spread = sum(np.where(valid, np.abs(v - pred), 0) for v, valid in values)
    return pred, np.searchsorted(ACTIVITY_THRESHOLDS, (spread + count // 2) // count, side="right")


def _walk(shape: tuple[int, int, int]):
    """(phase, channel, first) in coding order; `first` marks the channel the others refer to."""
    order = CHANNEL_ORDER[shape[2]]
    for phase in range(len(PHASES)):
        for channel in order:
            yield phase, channel, channel == order[0]


def _context(bucket: np.ndarray, reference: np.ndarray | None) -> np.ndarray:
    if reference is None:
        return bucket * NEIGHBOUR_BUCKETS
    return bucket * NEIGHBOUR_BUCKETS + np.searchsorted(NEIGHBOUR_THRESHOLDS, np.abs(reference), side="right")


def pixel_checksum(pixels: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())


def encode_residual(residual: np.ndarray, preview: np.ndarray, max_error: int, checksum: int) -> bytes:
    """Code an (H, W, C) integer residual (in units of 2·max_error + 1), given the (H, W, C) preview."""
    residual = np.asarray(residual, dtype=np.int64)
    if residual.shape != preview.shape or residual.ndim != 3 or residual.shape[2] not in CHANNEL_ORDER:
        raise ValueError("residual and preview must both be (H, W, 1 or 3)")
    radius, unit = residual_radius(max_error), 2 * max_error + 1
    if residual.size and np.abs(residual).max() > radius:
        raise ValueError("residual exceeds its radius")
    act = activity(preview)
    channels = residual.shape[2]
    span = 4 * radius
    weights = np.zeros((len(PHASES), channels), dtype=np.uint8)
    choices = np.zeros((len(PHASES), channels, CONTEXTS), dtype=np.uint8)
    groups = []
    reference = None
    for phase, channel, first in _walk(residual.shape):
        y0, x0, stride, neighbours = PHASES[phase]
        target = residual[y0::stride, x0::stride, channel]
        hood = _neighbourhood(residual, preview, phase, channel)
        if hood is None:
            best = 0
        else:
            total, count, _, detail = hood
            costs = [np.abs(4 * unit * (count * target - total) + w * detail).sum() for w in range(DETAIL_WEIGHTS)]
            best = int(np.argmin(costs))
        weights[phase, channel] = best
        pred, bucket = _prediction(hood, act, phase, channel, unit, best)
        error = target - pred
        coded = error if first else error - reference
        ctx = _context(bucket, None if first else reference)
        if first:
            reference = error
        for k in range(CONTEXTS):
            values = coded[ctx == k]
            if values.size:
                choices[phase, channel, k] = _best_table(values, span)
                groups.append((int(choices[phase, channel, k]), values))
    coder = ans.new_encoder()
    for index, values in reversed(groups):
        coder.encode_reverse((values + span).astype(np.int32), _model(index, span))
    return struct.pack("<I", checksum) + weights.tobytes() + choices.tobytes() + ans.to_bytes(coder)


def decode_residual(payload: bytes, preview: np.ndarray, max_error: int) -> tuple[np.ndarray, int]:
    """Inverse of `encode_residual`: (residual, pixel checksum)."""
    channels = preview.shape[2]
    n_weights = len(PHASES) * channels
    n_choices = n_weights * CONTEXTS
    head = 4 + n_weights + n_choices
    if channels not in CHANNEL_ORDER or len(payload) < head:
        raise CdcFormatError("exact-stage payload has the wrong size")
    (checksum,) = struct.unpack_from("<I", payload, 0)
    weights = np.frombuffer(payload, dtype=np.uint8, count=n_weights, offset=4).reshape(len(PHASES), channels)
    choices = np.frombuffer(payload, dtype=np.uint8, count=n_choices, offset=4 + n_weights)
    choices = choices.reshape(len(PHASES), channels, CONTEXTS)
    if (choices >= GEOMETRIC_TABLES).any() or (weights >= DETAIL_WEIGHTS).any():
        raise CdcFormatError("exact-stage payload names an unknown table or predictor")
    coder = ans.open_decoder(payload[head:], PAYLOAD)
    act = activity(preview)
    radius, unit = residual_radius(max_error), 2 * max_error + 1
    span = 4 * radius
    residual = np.zeros(preview.shape, dtype=np.int64)
    reference = None
    try:
        for phase, channel, first in _walk(preview.shape):
            y0, x0, stride, _ = PHASES[phase]
            hood = _neighbourhood(residual, preview, phase, channel)
            pred, bucket = _prediction(hood, act, phase, channel, unit, int(weights[phase, channel]))
            ctx = _context(bucket, None if first else reference)
            coded = np.zeros(pred.shape, dtype=np.int64)
            for k in range(CONTEXTS):
                where = ctx == k
                count = int(where.sum())
                if count:
                    decoded = coder.decode(_model(int(choices[phase, channel, k]), span), count)
                    coded[where] = np.asarray(decoded, dtype=np.int64) - span
            error = coded if first else coded + reference
            if first:
                reference = error
            values = pred + error
            if values.size and np.abs(values).max() > radius:
                raise CdcFormatError("exact-stage residual out of range")
            residual[y0::stride, x0::stride, channel] = values
    except CdcFormatError:
        raise
    except Exception as exc:
        raise CdcFormatError(f"{PAYLOAD} is corrupt ({exc})") from None
    ans.check_exhausted(coder, PAYLOAD)
    return residual, checksum


def residual_radius(max_error: int) -> int:
    """Largest |residual| possible for 8-bit pixels, in units of 2·max_error + 1."""
    return (255 + max_error) // (2 * max_error + 1)


def _best_table(values: np.ndarray, radius: int) -> int:
    """The family member that codes `values` in the fewest bits (the encoder's choice only)."""
    hist = np.bincount(values + radius, minlength=2 * radius + 1).astype(np.float64)
    return int(np.argmin(_code_lengths(radius) @ hist))


@lru_cache(maxsize=8)
def _code_lengths(radius: int) -> np.ndarray:
    """(GEOMETRIC_TABLES, 2·radius + 1) bits of every value under every family member."""
    return np.stack([-np.log2(geometric_table(i, radius) / TABLE_TOTAL) for i in range(GEOMETRIC_TABLES)])


@lru_cache(maxsize=512)
def _model(index: int, radius: int):
    return constriction.stream.model.Categorical(geometric_table(index, radius).astype(np.float64) / TABLE_TOTAL, perfect=False)
