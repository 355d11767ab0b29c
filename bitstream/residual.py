"""Coding the integer residual of the exact stages (lossless and near-lossless).

The residual q (original − preview, in units of 2·D + 1 grey levels) is coded
coarse to fine (PHASES): a sparse lattice first, then ever finer lattices whose
pixels have already decoded neighbours on every side, as in interlaced and
pyramid lossless coders. Within a phase, channels go green, red, blue.

Prediction is linear with integer coefficients that the encoder fits to this
image (robust least squares) and sends: for every (phase, channel, class) a few
signed bytes. Its inputs, all known to the decoder at that point, are the
already decoded pixels around the pixel (minus the preview there), the
preview's own detail at the pixel, and for red and blue what green (and red)
turned out to be at the same pixel and around it. The class picks one of
several predictors by how busy the neighbourhood is (flat areas want averaging,
textured ones something else).

Errors are coded with two-sided geometric distributions, p(k) ∝ θ^|k|, from a
fixed family of GEOMETRIC_TABLES integer tables built with integer arithmetic
only (identical everywhere). A symbol's table is picked by a context: how large
the neighbours' own coded errors were (the preview's gradient in the first
phase), and for green its predictor class, for red and blue the size of green's
error at that pixel. The encoder picks the family member per
(phase, channel, context) that codes this image in the fewest bits. Nothing the
decoder computes involves floating point.

Payload: CRC32 of the final pixels (4 bytes), the length S of the side
information (4 bytes), S bytes of side information (per group, in coding order:
the coefficients of each class that occurs, then the table index of each
context that occurs), then the ANS words.
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

#: Context thresholds of the first phase (the preview's gradient) and of later ones
#: (the mean magnitude of the neighbours' coded prediction errors).
ACTIVITY_THRESHOLDS = np.array([1, 2, 4, 7, 12, 20, 34])
ERROR_THRESHOLDS = np.array([1, 2, 3, 4, 6, 8, 11, 15, 20, 27, 36, 50])
ERROR_BUCKETS = len(ERROR_THRESHOLDS) + 1
#: Predictor classes by the neighbourhood's mean absolute deviation, in grey levels.
CLASS_THRESHOLDS = np.array([3, 8, 16])
#: The second context: green's predictor class, or for red and blue the bucket of
#: |green's error| at the pixel (thresholds NEIGHBOUR_THRESHOLDS).
NEIGHBOUR_THRESHOLDS = np.array([1, 3, 8])
NEIGHBOUR_BUCKETS = len(NEIGHBOUR_THRESHOLDS) + 1
assert NEIGHBOUR_BUCKETS == len(CLASS_THRESHOLDS) + 1
CONTEXTS = ERROR_BUCKETS * NEIGHBOUR_BUCKETS
#: Coefficients are signed bytes in units of 1/COEFFICIENT_ONE.
COEFFICIENT_SHIFT = 6
COEFFICIENT_ONE = 1 << COEFFICIENT_SHIFT
#: Decay of the family's tables: θ = 1 − 2^(−i/4), i = 1 .. GEOMETRIC_TABLES (from very peaked to nearly flat).
GEOMETRIC_TABLES = 48
_FIXED = 1 << 30
PAYLOAD = "exact-stage payload"
#: Rounds of reweighting in the encoder's robust (least absolute error) fit.
_IRLS_ROUNDS = 6
_FIT_ROWS = 8192


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
LEVELS = 4


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
#: Green first: red and blue are predicted with what green (and red) turned out to be.
CHANNEL_ORDER = {1: (0,), 3: (1, 0, 2)}


def _known_offsets(phase: int) -> tuple[tuple[int, int], ...]:
    """Offsets of the pixels around a pixel of `phase` that earlier phases decoded.

    The nearest ring (one half-stride away, directly and diagonally), nearest first:
    diagonal ones at lattice centres, direct ones at the first edge midpoints, and
    all eight at the second edge midpoints (the first ones are decoded by then).
    """
    y0, x0, stride, neighbours = PHASES[phase]
    if not neighbours:
        return ()
    h = stride // 2
    known = []
    for dy in (-h, 0, h):
        for dx in (-h, 0, h):
            if (dy, dx) != (0, 0) and _phase_at(y0 + dy + 2 * stride, x0 + dx + 2 * stride) < phase:
                known.append((dy, dx))
    return tuple(sorted(known, key=lambda o: (abs(o[0]) + abs(o[1]), o)))


def _phase_at(y: int, x: int) -> int:
    for index in range(len(PHASES) - 1, -1, -1):
        y0, x0, stride, _ = PHASES[index]
        if y % stride == y0 and x % stride == x0:
            return index
    raise AssertionError("every pixel belongs to a phase")


OFFSETS = tuple(_known_offsets(p) for p in range(len(PHASES)))


def activity(preview: np.ndarray) -> np.ndarray:
    """Local activity bucket per pixel and channel: |horizontal| + |vertical| central differences."""
    p = preview.astype(np.int64)
    padded = np.pad(p, ((1, 1), (1, 1), (0, 0)), mode="edge")
    grad = np.abs(padded[1:-1, 2:] - padded[1:-1, :-2]) + np.abs(padded[2:, 1:-1] - padded[:-2, 1:-1])
    return np.searchsorted(ACTIVITY_THRESHOLDS, grad, side="right")


def _gather(plane: np.ndarray, phase: int, offsets) -> list[np.ndarray]:
    """The values of `plane` at each offset from every pixel of `phase`.

    Outside the image the plane is mirrored without repeating the edge
    (numpy.pad's "reflect"), so border pixels get neighbours from inside.
    """
    y0, x0, stride, _ = PHASES[phase]
    height, width = plane.shape
    rows, cols = len(range(y0, height, stride)), len(range(x0, width, stride))
    padded = np.pad(plane, _BORDER, mode="reflect")
    top, left = _BORDER + y0, _BORDER + x0
    return [
        padded[top + dy : top + dy + stride * rows : stride, left + dx : left + dx + stride * cols : stride]
        for dy, dx in offsets
    ]


#: How far outside the image a neighbour can lie (half the coarsest stride).
_BORDER = 1 << (LEVELS - 1)


class _State:
    """What encoder and decoder both know while the phases are coded.

    `q` holds the residual decoded so far (0 where not yet decoded), `error` the
    magnitude of each decoded pixel's prediction error. The encoder keeps this
    state exactly as the decoder builds it, so both compute the same inputs.
    """

    def __init__(self, preview: np.ndarray, max_error: int):
        self.preview = preview.astype(np.int64)
        self.unit = 2 * max_error + 1
        self.radius = residual_radius(max_error)
        self.q = np.zeros(preview.shape, dtype=np.int64)
        self.error = np.zeros(preview.shape, dtype=np.int64)
        self.activity = activity(preview)
        self._around: dict[int, list[np.ndarray]] = {}

    def features(self, phase: int, channel: int, order: tuple[int, ...]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(inputs of the predictor, this channel's own neighbourhood) for one group."""
        y0, x0, stride, _ = PHASES[phase]
        offsets = OFFSETS[phase]
        centre = self.preview[y0::stride, x0::stride, channel]
        own: list[np.ndarray] = []
        inputs: list[np.ndarray] = []
        if offsets:
            pixels = self.preview[:, :, channel] + self.unit * self.q[:, :, channel]
            own = [v - centre for v in _gather(pixels, phase, offsets)]
            near = _gather(self.preview[:, :, channel], phase, offsets[:4])
            inputs = own + [len(near) * centre - sum(near)]
        for earlier in order[: order.index(channel)]:
            inputs.append(self.unit * self.q[y0::stride, x0::stride, earlier])
            inputs += self._around.get(earlier, [])[:4]
        self._around[channel] = own
        return inputs, own

    def classes(self, own: list[np.ndarray], shape) -> np.ndarray:
        """Predictor class per pixel: mean absolute deviation of the neighbourhood, in integers."""
        if not own:
            return np.zeros(shape, dtype=np.int64)
        n = len(own)
        total = sum(own)
        deviation = sum(np.abs(n * v - total) for v in own)  # n² × mean absolute deviation
        return np.searchsorted(CLASS_THRESHOLDS * n * n, deviation, side="right")

    def contexts(self, phase: int, channel: int, classes: np.ndarray, first: bool) -> np.ndarray:
        """Table context per pixel: how large the neighbours' own prediction errors were
        (the preview's gradient in the first phase), times NEIGHBOUR_BUCKETS, plus the
        predictor class for green, or the size of green's error here for red and blue."""
        y0, x0, stride, _ = PHASES[phase]
        offsets = OFFSETS[phase]
        if offsets:
            n = len(offsets)
            errors = sum(_gather(self.error[:, :, channel], phase, offsets))
            bucket = np.searchsorted(ERROR_THRESHOLDS, (errors + n // 2) // n, side="right")
        else:
            bucket = self.activity[y0::stride, x0::stride, channel]
        if first:
            return bucket * NEIGHBOUR_BUCKETS + classes
        green = self.error[y0::stride, x0::stride, CHANNEL_ORDER[3][0]]  # coded just before, same phase
        return bucket * NEIGHBOUR_BUCKETS + np.searchsorted(NEIGHBOUR_THRESHOLDS, green, side="right")

    def store(self, phase: int, channel: int, values: np.ndarray, error: np.ndarray) -> None:
        y0, x0, stride, _ = PHASES[phase]
        self.q[y0::stride, x0::stride, channel] = values
        self.error[y0::stride, x0::stride, channel] = np.abs(error)


def _stack(inputs: list[np.ndarray]) -> np.ndarray:
    """The inputs as one (pixels, inputs) float64 matrix (exact: every value is a small integer)."""
    return np.stack([v.ravel() for v in inputs], axis=1).astype(np.float64)


def _predict(stacked: np.ndarray | None, classes: np.ndarray, coefficients: dict[int, np.ndarray], radius: int) -> np.ndarray:
    """Σ coefficient·input / COEFFICIENT_ONE, rounded down, with each pixel's class's coefficients;
    clipped to the residual range. `stacked` is `_stack(inputs)`, or None without inputs."""
    if stacked is None or classes.size == 0:
        return np.zeros(classes.shape, dtype=np.int64)
    # float64 products and sums of these small integers are exact (all below 2^53),
    # so the fast float matrix product gives the same integers on every machine.
    used = sorted(coefficients)
    matrix = np.stack([coefficients[k] for k in used], axis=1).astype(np.float64)
    column = np.searchsorted(used, classes.ravel())
    sums = np.take_along_axis(stacked @ matrix, column[:, None], axis=1)[:, 0].astype(np.int64)
    return np.clip((sums + COEFFICIENT_ONE // 2) >> COEFFICIENT_SHIFT, -radius, radius).reshape(classes.shape)


def _split(keys: np.ndarray, size: int) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """Positions of a flat key array sorted by key, and (key, start, stop) for every key present, ascending."""
    flat = keys.ravel().astype(np.int16)  # small integer keys: numpy's stable sort is then a radix sort
    order = np.argsort(flat, kind="stable")
    counts = np.bincount(flat, minlength=size)
    stops = np.cumsum(counts)
    return order, [(k, int(stops[k] - counts[k]), int(stops[k])) for k in np.flatnonzero(counts)]


def _fit(inputs: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Encoder only: coefficients (signed bytes) that nearly minimise the absolute error.

    Iteratively reweighted least squares on at most _FIT_ROWS evenly spaced
    samples; the decoder never runs this, it reads the result.
    """
    every = max(1, len(target) // _FIT_ROWS)
    x = inputs[::every]
    y = target[::every].astype(np.float64)
    weights = np.ones(len(y))
    a = np.zeros(x.shape[1])
    ridge = 1e-3 * np.eye(x.shape[1])
    for _ in range(_IRLS_ROUNDS):
        weighted = x * weights[:, None]
        a = np.linalg.solve(weighted.T @ x + ridge, weighted.T @ y)
        weights = 1.0 / np.maximum(np.abs(y - x @ a), 1.0)
    return np.clip(np.round(a * COEFFICIENT_ONE), -127, 127).astype(np.int64)


def _walk(shape: tuple[int, int, int]):
    """(phase, channel, first) in coding order; `first` marks the channel the others refer to."""
    order = CHANNEL_ORDER[shape[2]]
    for phase in range(len(PHASES)):
        for channel in order:
            yield phase, channel, channel == order[0]


def pixel_checksum(pixels: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())


def encode_residual(residual: np.ndarray, preview: np.ndarray, max_error: int, checksum: int) -> bytes:
    """Code an (H, W, C) integer residual (in units of 2·max_error + 1), given the (H, W, C) preview."""
    residual = np.asarray(residual, dtype=np.int64)
    if residual.shape != preview.shape or residual.ndim != 3 or residual.shape[2] not in CHANNEL_ORDER:
        raise ValueError("residual and preview must both be (H, W, 1 or 3)")
    state = _State(preview, max_error)
    if residual.size and np.abs(residual).max() > state.radius:
        raise ValueError("residual exceeds its radius")
    span = 4 * state.radius
    channel_order = CHANNEL_ORDER[residual.shape[2]]
    side = bytearray()
    groups = []
    for phase, channel, first in _walk(residual.shape):
        y0, x0, stride, _ = PHASES[phase]
        target = residual[y0::stride, x0::stride, channel]
        inputs, own = state.features(phase, channel, channel_order)
        classes = state.classes(own, target.shape)
        coefficients = {}
        stacked = _stack(inputs) if inputs else None
        if inputs:
            order, present = _split(classes, len(CLASS_THRESHOLDS) + 1)
            for k, start, stop in present:
                rows = order[start:stop] if stop - start >= 4 * len(inputs) else slice(None)
                coefficients[k] = _fit(stacked[rows], target.ravel()[rows])
                side += coefficients[k].astype(np.int8).tobytes()
        prediction = _predict(stacked, classes, coefficients, state.radius)
        error = target - prediction
        order, present = _split(state.contexts(phase, channel, classes, first), CONTEXTS)
        flat = error.ravel()
        for _, start, stop in present:
            values = flat[order[start:stop]]
            table = _best_table(values, span)
            side.append(table)
            groups.append((table, values))
        state.store(phase, channel, target, error)
    coder = ans.new_encoder()
    for index, values in reversed(groups):
        coder.encode_reverse((values + span).astype(np.int32), _model(index, span))
    return struct.pack("<II", checksum, len(side)) + bytes(side) + ans.to_bytes(coder)


class _SideReader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def take(self, count: int) -> np.ndarray:
        if self.at + count > len(self.data):
            raise CdcFormatError(f"{PAYLOAD} side information is truncated")
        chunk = np.frombuffer(self.data, dtype=np.int8, count=count, offset=self.at).astype(np.int64)
        self.at += count
        return chunk


def decode_residual(payload: bytes, preview: np.ndarray, max_error: int) -> tuple[np.ndarray, int]:
    """Inverse of `encode_residual`: (residual, pixel checksum)."""
    channels = preview.shape[2]
    if channels not in CHANNEL_ORDER or len(payload) < 8:
        raise CdcFormatError("exact-stage payload has the wrong size")
    checksum, side_length = struct.unpack_from("<II", payload, 0)
    if side_length > len(payload) - 8:
        raise CdcFormatError(f"{PAYLOAD} declares more side information than it holds")
    side = _SideReader(payload[8 : 8 + side_length])
    coder = ans.open_decoder(payload[8 + side_length :], PAYLOAD)
    state = _State(preview, max_error)
    span = 4 * state.radius
    channel_order = CHANNEL_ORDER[channels]
    try:
        for phase, channel, first in _walk(preview.shape):
            y0, x0, stride, _ = PHASES[phase]
            inputs, own = state.features(phase, channel, channel_order)
            classes = state.classes(own, state.q[y0::stride, x0::stride, channel].shape)
            present = np.flatnonzero(np.bincount(classes.ravel(), minlength=len(CLASS_THRESHOLDS) + 1)) if inputs else []
            coefficients = {int(k): side.take(len(inputs)) for k in present}
            prediction = _predict(_stack(inputs) if inputs else None, classes, coefficients, state.radius)
            order, groups = _split(state.contexts(phase, channel, classes, first), CONTEXTS)
            flat = np.zeros(prediction.size, dtype=np.int64)
            for _, start, stop in groups:
                table = int(side.take(1)[0]) & 0xFF
                if table >= GEOMETRIC_TABLES:
                    raise CdcFormatError(f"{PAYLOAD} names an unknown table")
                decoded = coder.decode(_model(table, span), stop - start)
                flat[order[start:stop]] = np.asarray(decoded, dtype=np.int64) - span
            error = flat.reshape(prediction.shape)
            values = prediction + error
            if values.size and np.abs(values).max() > state.radius:
                raise CdcFormatError("exact-stage residual out of range")
            state.store(phase, channel, values, error)
    except CdcFormatError:
        raise
    except Exception as exc:
        raise CdcFormatError(f"{PAYLOAD} is corrupt ({exc})") from None
    if side.at != len(side.data):
        raise CdcFormatError(f"{PAYLOAD} has side information left over")
    ans.check_exhausted(coder, PAYLOAD)
    return state.q, checksum


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
