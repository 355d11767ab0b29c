"""Coding the integer residual of the exact stages (lossless and near-lossless).

The residual q (original − preview, in units of 2·D + 1 grey levels) is coded
coarse to fine (PHASES): a sparse lattice first, then ever finer lattices whose
pixels have already decoded neighbours on every side, as in interlaced and
pyramid lossless coders. Within a phase, channels go green, red, blue.

Colour images code red and blue as differences from green (in the residual
and the preview alike: q_R − q_G and p_R − p_G), JPEG XL's and WebP's
"subtract green". The predictor could take green with weight one itself, but
it is the neighbourhoods, classes and error contexts of the differences that
pay (format 5; on Kodak it saves bits lossless, and more at D = 1 and 2:
results/exact/README.md). Differences of residual indices keep
the near-lossless bound: green is decoded first, and adding it back is exact.

Prediction is linear with integer coefficients that the encoder fits to this
image (robust least squares) and sends: for every (phase, channel, class) a few
signed bytes. Its inputs, all known to the decoder at that point, are the
already decoded pixels around the pixel (minus the preview there), the
preview's own detail at the pixel, for red and blue what green (and red)
turned out to be at the same pixel and around it, and a constant (the
intercept: on Kodak, red's and blue's errors sat up to half a level off zero
in many contexts). The class picks one of several predictors by how busy the
neighbourhood is (flat areas want averaging, textured ones something else).

The linear prediction then gets a bias correction (format 6, CALIC's "bias
cancellation" made per image): the four nearest decoded neighbours, each
placed in one of PATTERN_LEVELS' five bands around the prediction (more than
a level and a half below, half a level to a level and a half below, within
half a level, ...), make one of 625 patterns, and for every pattern that
occurs at least PATTERN_MIN_COUNT times in the group the encoder sends the
median error there in eighths of a level, which the decoder adds. Linear
inputs cannot express this (a pattern is a comparison, not a sum). The encoder
switches it off in a group where it does not pay for its bytes. How many of
the four neighbours sit within half a level of the prediction also refines the
table context. Measured with scripts/exact_bias_variants.py (real bytes of the
residual payload, results/exact/README.md): on six Kodak images the two save
4.3% together (the context alone 0.8%), and the corrections' share is nearly
all in red and blue (in green they save 0.01%), whose differences from green
carry structure from the chroma subsampling of the Photo CD originals; on ten
training photos (BSDS500, decoded from JPEG) 2.7%, most of it from the context.

The prediction is kept to 1/64 of a level. Its integer part is subtracted; the
fraction left over says where the error's distribution is centred (between 0
and ±1/2), so the error is coded with a table centred there: the sign is
flipped when the fraction is negative, and the fraction's size picks one of
OFFSET_STEPS centres. Within one context the errors are flat-topped with heavy
tails, so the tables come from a Student's-t-like family of ERROR_TABLES shapes
and scales, built with integer arithmetic only (identical everywhere). A
symbol's table is picked by a context: how large the neighbours' own coded
errors were (the preview's gradient in the first phase), for green its
predictor class, for red and blue the size of green's error at that pixel, and
how many of the four nearest neighbours agree with the prediction. The
encoder picks the family member per (phase, channel, context) that codes this
image in the fewest bits. Nothing the decoder computes involves floating point
beyond exact sums of small integers.

Payload: CRC32 of the final pixels (4 bytes), the length S of the side
information (4 bytes), S bytes of side information compressed with zlib
(deflate: it saves 0.3% of the payload on Kodak, 0.5% on the training photos;
the decoder inflates at most SIDE_LIMIT_PER_GROUP bytes per group). Inflated,
it holds (per group, in coding order:
the coefficients of each class that occurs; in every phase after the first a
flag byte, 1 if the bias correction is on, followed then by one correction
byte per pattern that occurs often enough, in pattern order; then the table
index of each context that occurs), then the ANS words.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from functools import lru_cache
from math import isqrt

import constriction
import numpy as np
from threadpoolctl import threadpool_limits

from . import ans
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
#: The third context: how many of the four nearest neighbours lie within half a
#: level of the prediction (0–1, 2–3, 4), after the first phase.
AGREEMENT_BUCKETS = 3
CONTEXTS = ERROR_BUCKETS * NEIGHBOUR_BUCKETS * AGREEMENT_BUCKETS
#: Bias correction: bands of (neighbour − prediction) in 1/64 of a level (band i
#: holds the differences d with PATTERN_LEVELS[i − 1] < d <= PATTERN_LEVELS[i]),
#: for the four nearest neighbours: 5^4 patterns. A pattern gets a correction byte
#: when it occurs at least PATTERN_MIN_COUNT times in its group (so the decoder,
#: which sees the same patterns, knows which bytes follow). scripts/exact_bias_variants.py
#: on six Kodak images (against no correction and no agreement context): 3 bands
#: −2.8%, these 5 −4.3%, 7 −4.5%; a minimum count of 16, 32, 64, 128: −4.3%,
#: −4.3%, −4.2%, −3.9% (on ten training photos every one of these within −2.6% to −2.8%).
#: 7 bands were measured after the Kodak table of format 6 was made; 0.2% on
#: Kodak and nothing elsewhere did not justify changing the format again.
PATTERN_LEVELS = np.array([-96, -32, 32, 96])
PATTERN_NEIGHBOURS = 4
PATTERNS = (len(PATTERN_LEVELS) + 1) ** PATTERN_NEIGHBOURS
PATTERN_MIN_COUNT = 32
#: Corrections are signed bytes in eighths of a level.
CORRECTION_SHIFT = 3
#: No group's side information is longer: coefficients of up to 4 classes of at
#: most 32 inputs, the flag, a correction per pattern and a table per context.
SIDE_LIMIT_PER_GROUP = 4 * 32 + 1 + PATTERNS + CONTEXTS
#: Coefficients are signed bytes in units of 1/COEFFICIENT_ONE.
COEFFICIENT_SHIFT = 6
COEFFICIENT_ONE = 1 << COEFFICIENT_SHIFT
#: The table family. Within one context the errors are not two-sided geometric:
#: they are flat-topped near zero with heavier tails, like a mixture of Laplace
#: distributions of nearby scales (measured: −2.3% bits against 48 geometric
#: tables). Table (shape n, scale i) at centre μ has weights
#: w(k) = (a / (a + (k − μ)²))^n, a = (2n − 1)·s² (Student's t with 2n − 1
#: degrees of freedom): n = 1 is Cauchy-like, n = 12 nearly Gaussian.
#: s² = 2^(i/4) / 8, i = 0 .. TABLE_SCALES − 1, so s runs from 0.35 to 83 in
#: steps of 2^(1/8). Table index = shape · TABLE_SCALES + i, one byte.
TABLE_SHAPES = (1, 2, 4, 12)
TABLE_SCALES = 64
ERROR_TABLES = len(TABLE_SHAPES) * TABLE_SCALES
assert ERROR_TABLES == 256
#: Frequencies of every table sum to this. Finer than the latent tables' 2^16:
#: every value gets at least one count, and 2^16 would spend 1.6% of the mass on
#: the ±2R tails (measured +0.7% bits); constriction's coder works to 2^-24.
TABLE_TOTAL = 1 << 22
#: Centres μ = j / 8, j = 0 .. OFFSET_STEPS − 1 (0 to 1/2 of a level).
OFFSET_STEPS = 5
_FIXED_SHIFT = 28
PAYLOAD = "exact-stage payload"
#: Rounds of reweighting in the encoder's robust (least absolute error) fit.
_IRLS_ROUNDS = 6
_FIT_ROWS = 4096


@lru_cache(maxsize=2 * OFFSET_STEPS)
def _weights(span: int, offset: int) -> np.ndarray:
    """(ERROR_TABLES, 2·span + 1) fixed-point weights w(k), k = −span .. span, centred at offset/8.

    Integer arithmetic only, in int64 without overflow (256·a < 2^26, so
    64·256·a·2^28 < 2^62; products of two weights < 2^56), so every machine
    builds the same tables: 256·a comes from integer fourth roots,
    a / (a + (k − μ)²) = 64·256·a / (64·256·a + 256·(8k − j)²) is an integer
    division, and the power is n truncating fixed-point multiplications.
    """
    distance = (8 * np.arange(-span, span + 1, dtype=np.int64) - offset) ** 2
    rows = []
    for power in TABLE_SHAPES:
        for i in range(TABLE_SCALES):
            a = 64 * (2 * power - 1) * isqrt(isqrt(1 << (i + 20)))  # 64·256·(2n − 1)·2^(i/4)/8
            ratio = (a << _FIXED_SHIFT) // (a + 256 * distance)
            weight = np.full(2 * span + 1, 1 << _FIXED_SHIFT, dtype=np.int64)
            for _ in range(power):
                weight = (weight * ratio) >> _FIXED_SHIFT
            rows.append(weight)
    return np.stack(rows)


@lru_cache(maxsize=None)
def error_table(index: int, span: int, offset: int = 0) -> np.ndarray:
    """Integer frequencies (summing to TABLE_TOTAL, each >= 1) over −span..span, centred at offset/8."""
    if not 0 <= index < ERROR_TABLES or not 0 <= offset < OFFSET_STEPS:
        raise ValueError("table index or offset out of range")
    row = _weights(span, offset)[index]
    budget = TABLE_TOTAL - len(row)
    freqs = 1 + row * budget // int(row.sum())
    freqs[span] += TABLE_TOTAL - int(freqs.sum())  # the remainder goes to zero, a likeliest value
    return freqs


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
    return _bucket(ACTIVITY_THRESHOLDS, grad)


@lru_cache(maxsize=None)
def _bucket_lookup(thresholds: tuple[int, ...]) -> np.ndarray:
    return np.searchsorted(thresholds, np.arange(thresholds[-1] + 1), side="right")


def _bucket(thresholds: np.ndarray, values: np.ndarray) -> np.ndarray:
    """How many of the ascending `thresholds` each non-negative integer value reaches.

    The same as np.searchsorted(thresholds, values, side="right"), by table lookup (several times faster).
    """
    return _bucket_lookup(tuple(int(t) for t in thresholds))[np.minimum(values, thresholds[-1])]


def _gather(plane: np.ndarray, phase: int, offsets, padded: np.ndarray | None = None) -> list[np.ndarray]:
    """The values of `plane` at each offset from every pixel of `phase`.

    Outside the image the plane is mirrored without repeating the edge
    (numpy.pad's "reflect"), so border pixels get neighbours from inside.
    `padded`, if given, is that mirrored plane already.
    """
    y0, x0, stride, _ = PHASES[phase]
    height, width = plane.shape
    rows, cols = len(range(y0, height, stride)), len(range(x0, width, stride))
    if padded is None:
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
        """`preview` is already decorrelated (`subtract_green`)."""
        self.preview = preview.astype(np.int64)
        self.unit = 2 * max_error + 1
        self.radius = coded_radius(max_error, preview.shape[2])
        self.q = np.zeros(preview.shape, dtype=np.int64)
        self.error = np.zeros(preview.shape, dtype=np.int64)
        self.activity = activity(preview)
        self._padded_preview = [np.pad(self.preview[:, :, c], _BORDER, mode="reflect") for c in range(preview.shape[2])]
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
            near = _gather(self.preview[:, :, channel], phase, offsets[:4], self._padded_preview[channel])
            inputs = own + [len(near) * centre - sum(near)]
        for earlier in order[: order.index(channel)]:
            inputs.append(self.unit * self.q[y0::stride, x0::stride, earlier])
            inputs += self._around.get(earlier, [])[:4]
        self._around[channel] = own
        inputs.append(np.ones(centre.shape, dtype=np.int64))  # the intercept
        return inputs, own

    def contexts(self, phase: int, channel: int, classes: np.ndarray, first: bool, agreement: np.ndarray) -> np.ndarray:
        """Table context per pixel: how large the neighbours' own prediction errors were
        (the preview's gradient in the first phase); the predictor class for green, or
        the size of green's error here for red and blue; and the agreement bucket."""
        y0, x0, stride, _ = PHASES[phase]
        offsets = OFFSETS[phase]
        if offsets:
            n = len(offsets)
            errors = sum(_gather(self.error[:, :, channel], phase, offsets))
            bucket = _bucket(ERROR_THRESHOLDS, (errors + n // 2) // n)
        else:
            bucket = self.activity[y0::stride, x0::stride, channel]
        if first:
            second = classes
        else:
            green = self.error[y0::stride, x0::stride, CHANNEL_ORDER[3][0]]  # coded just before, same phase
            second = _bucket(NEIGHBOUR_THRESHOLDS, green)
        return (bucket * NEIGHBOUR_BUCKETS + second) * AGREEMENT_BUCKETS + agreement

    def store(self, phase: int, channel: int, values: np.ndarray, error: np.ndarray) -> None:
        y0, x0, stride, _ = PHASES[phase]
        self.q[y0::stride, x0::stride, channel] = values
        self.error[y0::stride, x0::stride, channel] = np.abs(error)


def predictor_classes(own: list[np.ndarray], shape) -> np.ndarray:
    """Predictor class per pixel: mean absolute deviation of the neighbourhood, in integers."""
    if not own:
        return np.zeros(shape, dtype=np.int64)
    n = len(own)
    total = sum(own)
    deviation = sum(np.abs(n * v - total) for v in own)  # n² × mean absolute deviation
    return _bucket(CLASS_THRESHOLDS * n * n, deviation)


def _stack(inputs: list[np.ndarray]) -> np.ndarray:
    """The inputs as one (pixels, inputs) float64 matrix (exact: every value is a small integer)."""
    return np.stack([v.ravel() for v in inputs], axis=1).astype(np.float64)


def _sums(stacked: np.ndarray, classes: np.ndarray, coefficients: dict[int, np.ndarray]) -> np.ndarray:
    """Σ coefficient·input per pixel with its class's coefficients, in 1/COEFFICIENT_ONE of a level.

    `stacked` is `_stack(inputs)`. float64 products and sums of these small
    integers are exact (all below 2^53), so the fast float matrix product gives
    the same integers on every machine.
    """
    if classes.size == 0:
        return np.zeros(classes.shape, dtype=np.int64)
    used = sorted(coefficients)
    matrix = np.stack([coefficients[k] for k in used], axis=1).astype(np.float64)
    column = np.searchsorted(used, classes.ravel())
    sums = np.take_along_axis(stacked @ matrix, column[:, None], axis=1)[:, 0].astype(np.int64)
    return sums.reshape(classes.shape)


def _rounded(sums: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, fraction): the sum rounded to the nearest level (halves up), clipped
    to the residual range, and what is left, s − COEFFICIENT_ONE·prediction, in
    [−32, 31] (0 where the prediction was clipped)."""
    rounded = (sums + COEFFICIENT_ONE // 2) >> COEFFICIENT_SHIFT
    prediction = np.clip(rounded, -radius, radius)
    fraction = np.where(prediction == rounded, sums - (rounded << COEFFICIENT_SHIFT), 0)
    return prediction, fraction


def neighbour_patterns(own: list[np.ndarray], sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pattern, agreement bucket) per pixel from the nearest neighbours' places around the prediction.

    Each of the PATTERN_NEIGHBOURS nearest neighbours (own[0..3], the decoded
    pixel minus the preview, in levels) falls in a band of PATTERN_LEVELS around
    the linear prediction `sums` (in 1/64 of a level); the pattern is the bands
    as base-5 digits. The agreement bucket counts the neighbours in the middle
    band (within half a level): 0–1, 2–3 or 4. Integers only.
    """
    pattern = np.zeros(sums.shape, dtype=np.int64)
    agreeing = np.zeros(sums.shape, dtype=np.int64)
    middle = len(PATTERN_LEVELS) // 2
    for value in own[:PATTERN_NEIGHBOURS]:
        band = np.searchsorted(PATTERN_LEVELS, (value << COEFFICIENT_SHIFT) - sums, side="left")
        pattern = pattern * (len(PATTERN_LEVELS) + 1) + band
        agreeing += band == middle
    return pattern, np.minimum(agreeing, 4) // 2


def _corrected_patterns(pattern: np.ndarray) -> np.ndarray:
    """The patterns that get a correction byte, ascending: those seen PATTERN_MIN_COUNT times or more."""
    return np.flatnonzero(np.bincount(pattern.ravel(), minlength=PATTERNS) >= PATTERN_MIN_COUNT)


def _fit_corrections(pattern: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """Encoder only: per corrected pattern, the (lower) median of `errors` (in 1/64 level)
    there, in eighths of a level, as signed bytes."""
    flat = pattern.ravel()
    counts = np.bincount(flat, minlength=PATTERNS)
    low = int(errors.min()) if errors.size else 0
    spread = (int(errors.max()) - low + 1) if errors.size else 1
    ordered = np.sort(flat * spread + (errors.ravel() - low))  # by pattern, then by error
    starts = np.cumsum(counts) - counts
    used = _corrected_patterns(pattern)
    medians = ordered[starts[used] + (counts[used] - 1) // 2] - used * spread + low
    step = 1 << (COEFFICIENT_SHIFT - CORRECTION_SHIFT)
    return np.clip(np.floor_divide(medians + step // 2, step), -127, 127).astype(np.int64)


def _corrected(sums: np.ndarray, pattern: np.ndarray, used: np.ndarray, corrections: np.ndarray) -> np.ndarray:
    """`sums` plus each pixel's pattern correction (`corrections` for the patterns `used`,
    which are `_corrected_patterns(pattern)`)."""
    table = np.zeros(PATTERNS, dtype=np.int64)
    table[used] = corrections << (COEFFICIENT_SHIFT - CORRECTION_SHIFT)
    return sums + table[pattern]


def _centring(fraction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sign, offset) per pixel: the error times sign is coded with tables centred at offset/8 ≥ 0.

    The fraction f (in 1/64 levels) is where the error's distribution centres;
    flipping the sign where f < 0 puts every centre on the positive side, and
    |f| rounded to eighths picks the centre.
    """
    sign = np.where(fraction < 0, -1, 1)
    shift = COEFFICIENT_SHIFT - 3
    return sign, (np.abs(fraction) + (1 << (shift - 1))) >> shift


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
        weights = 1.0 / np.maximum(np.abs(y - x @ a), 0.5)
    return np.clip(np.round(a * COEFFICIENT_ONE), -127, 127).astype(np.int64)


def _walk(shape: tuple[int, int, int]):
    """(phase, channel, first) in coding order; `first` marks the channel the others refer to."""
    order = CHANNEL_ORDER[shape[2]]
    for phase in range(len(PHASES)):
        for channel in order:
            yield phase, channel, channel == order[0]


def pixel_checksum(pixels: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())


#: The coder's matrix products are small (a few thousand rows by about 20
#: inputs): a second BLAS thread gains nothing, and on a machine whose cores are
#: busy the threads wait on each other. In session 13's Kodak table
#: (results/exact/kodak.json), run with both cores of the 2-core machine taken by
#: other processes and OpenBLAS's default threads, lossless encodes took 1.8–24 s
#: (mean 13.6 s); with one thread, scripts/time_lossless.py gave 0.79 s with one
#: core taken.
_ONE_BLAS_THREAD = {"limits": 1, "user_api": "blas"}


def encode_residual(residual: np.ndarray, preview: np.ndarray, max_error: int, checksum: int) -> bytes:
    """Code an (H, W, C) integer residual (in units of 2·max_error + 1), given the (H, W, C) preview."""
    with threadpool_limits(**_ONE_BLAS_THREAD):
        return _encode_residual(residual, preview, max_error, checksum)


def decode_residual(payload: bytes, preview: np.ndarray, max_error: int) -> tuple[np.ndarray, int]:
    """Inverse of `encode_residual`: (residual, pixel checksum)."""
    with threadpool_limits(**_ONE_BLAS_THREAD):
        return _decode_residual(payload, preview, max_error)


def _encode_residual(residual: np.ndarray, preview: np.ndarray, max_error: int, checksum: int) -> bytes:
    residual = np.asarray(residual, dtype=np.int64)
    if residual.shape != preview.shape or residual.ndim != 3 or residual.shape[2] not in CHANNEL_ORDER:
        raise ValueError("residual and preview must both be (H, W, 1 or 3)")
    if residual.size and np.abs(residual).max() > residual_radius(max_error):
        raise ValueError("residual exceeds its radius")
    residual, preview = subtract_green(residual), subtract_green(preview)
    state = _State(preview, max_error)
    span = 2 * state.radius
    channel_order = CHANNEL_ORDER[residual.shape[2]]
    side = bytearray()
    groups = []
    for phase, channel, first in _walk(residual.shape):
        y0, x0, stride, _ = PHASES[phase]
        target = residual[y0::stride, x0::stride, channel]
        inputs, own = state.features(phase, channel, channel_order)
        classes = predictor_classes(own, target.shape)
        coefficients = {}
        stacked = _stack(inputs)
        order, present = _split(classes, len(CLASS_THRESHOLDS) + 1)
        for k, start, stop in present:
            rows = order[start:stop] if stop - start >= 4 * len(inputs) else slice(None)
            coefficients[k] = _fit(stacked[rows], target.ravel()[rows])
            side += coefficients[k].astype(np.int8).tobytes()
        sums = _sums(stacked, classes, coefficients)
        agreement = np.zeros(target.shape, dtype=np.int64)
        choices = [(b"", sums)]
        if own:
            pattern, agreement = neighbour_patterns(own, sums)
            corrections = _fit_corrections(pattern, (target << COEFFICIENT_SHIFT) - sums)
            corrected = _corrected(sums, pattern, _corrected_patterns(pattern), corrections)
            choices = [(b"\0", sums), (b"\1" + corrections.astype(np.int8).tobytes(), corrected)]
        contexts = state.contexts(phase, channel, classes, first, agreement)
        plans = [(header, _plan_group(target, choice, contexts, state.radius, span)) for header, choice in choices]
        # the cheaper of with and without the bias correction, its own bytes counted
        header, (_, tables, runs, error) = min(plans, key=lambda plan: 8 * len(plan[0]) + plan[1][0])
        side += header + tables
        groups += runs
        state.store(phase, channel, target, error)
    coder = ans.new_encoder()
    for table, centre, symbols in reversed(groups):
        coder.encode_reverse(symbols, _model(table, span, centre))
    packed = zlib.compress(bytes(side), 9)
    return struct.pack("<II", checksum, len(packed)) + packed + ans.to_bytes(coder)


def _inflate(packed: bytes, limit: int) -> bytes:
    """The side information, refusing a stream that is not one whole zlib stream or inflates beyond `limit`."""
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(packed, limit)
    except zlib.error:
        raise CdcFormatError(f"{PAYLOAD} side information is not a zlib stream") from None
    if not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
        raise CdcFormatError(f"{PAYLOAD} side information is truncated, too long or followed by stray bytes")
    return data


class _SideReader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def take(self, count: int) -> np.ndarray:
        if self.at + count > len(self.data):
            raise CdcFormatError(f"{PAYLOAD} side information is truncated")
        chunk = np.frombuffer(self.data, dtype=np.int8, count=count, offset=self.at).astype(np.int64)
        self.at += count
        return chunk


def _decode_residual(payload: bytes, preview: np.ndarray, max_error: int) -> tuple[np.ndarray, int]:
    channels = preview.shape[2]
    if channels not in CHANNEL_ORDER or len(payload) < 8:
        raise CdcFormatError("exact-stage payload has the wrong size")
    checksum, side_length = struct.unpack_from("<II", payload, 0)
    if side_length > len(payload) - 8:
        raise CdcFormatError(f"{PAYLOAD} declares more side information than it holds")
    groups = len(PHASES) * channels
    side = _SideReader(_inflate(payload[8 : 8 + side_length], groups * SIDE_LIMIT_PER_GROUP))
    coder = ans.open_decoder(payload[8 + side_length :], PAYLOAD)
    state = _State(subtract_green(preview), max_error)
    span = 2 * state.radius
    channel_order = CHANNEL_ORDER[channels]
    try:
        for phase, channel, first in _walk(preview.shape):
            y0, x0, stride, _ = PHASES[phase]
            inputs, own = state.features(phase, channel, channel_order)
            classes = predictor_classes(own, state.q[y0::stride, x0::stride, channel].shape)
            present = np.flatnonzero(np.bincount(classes.ravel(), minlength=len(CLASS_THRESHOLDS) + 1))
            coefficients = {int(k): side.take(len(inputs)) for k in present}
            sums = _sums(_stack(inputs), classes, coefficients)
            agreement = np.zeros(classes.shape, dtype=np.int64)
            if own:
                pattern, agreement = neighbour_patterns(own, sums)
                switch = int(side.take(1)[0])
                if switch == 1:
                    used = _corrected_patterns(pattern)
                    sums = _corrected(sums, pattern, used, side.take(len(used)))
                elif switch != 0:
                    raise CdcFormatError(f"{PAYLOAD} has a bad bias-correction flag")
            prediction, fraction = _rounded(sums, state.radius)
            sign, offset = _centring(fraction)
            keys = state.contexts(phase, channel, classes, first, agreement) * OFFSET_STEPS + offset
            order, groups = _split(keys, CONTEXTS * OFFSET_STEPS)
            flat = np.zeros(prediction.size, dtype=np.int64)
            for parts in _by_context(groups):
                table = int(side.take(1)[0]) & 0xFF  # every byte names a table
                for key, start, stop in parts:
                    decoded = coder.decode(_model(table, span, key % OFFSET_STEPS), stop - start)
                    flat[order[start:stop]] = np.asarray(decoded, dtype=np.int64) - span
            error = flat.reshape(prediction.shape) * sign
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
    residual = add_green(state.q)
    if residual.size and np.abs(residual).max() > residual_radius(max_error):
        raise CdcFormatError("exact-stage residual out of range")
    return residual, checksum


def residual_radius(max_error: int) -> int:
    """Largest |residual| possible for 8-bit pixels, in units of 2·max_error + 1."""
    return (255 + max_error) // (2 * max_error + 1)


def coded_radius(max_error: int, channels: int) -> int:
    """Largest |coded value| of a channel: red's and blue's differences from green reach twice the residual's."""
    return residual_radius(max_error) * (2 if channels == 3 else 1)


def subtract_green(planes: np.ndarray) -> np.ndarray:
    """(H, W, 3) → green kept, red and blue minus green (int64); grayscale unchanged."""
    planes = np.asarray(planes, dtype=np.int64)
    return planes - _green_under_red_and_blue(planes)


def add_green(planes: np.ndarray) -> np.ndarray:
    """Inverse of `subtract_green`."""
    return planes + _green_under_red_and_blue(planes)


def _green_under_red_and_blue(planes: np.ndarray) -> np.ndarray:
    """Green in the red and blue planes and 0 in green's (all 0 for grayscale)."""
    if planes.shape[2] != 3:
        return np.zeros_like(planes)
    green = planes[:, :, 1]
    return np.stack([green, np.zeros_like(green), green], axis=2)


def _by_context(groups: list[tuple[int, int, int]]):
    """`_split`'s groups of context·OFFSET_STEPS + offset keys, as one [(key, start, stop), ...] list per context."""
    for _, parts in itertools.groupby(groups, key=lambda group: group[0] // OFFSET_STEPS):
        yield list(parts)


def _plan_group(target: np.ndarray, sums: np.ndarray, contexts: np.ndarray, radius: int, span: int):
    """Encoder: how one group would be coded with predictions `sums`.

    (ideal bits including the table bytes, the table bytes, the (table, centre,
    symbols) runs for the entropy coder, the prediction errors).
    """
    prediction, fraction = _rounded(sums, radius)
    error = target - prediction
    sign, offset = _centring(fraction)
    keys = contexts * OFFSET_STEPS + offset
    order, present = _split(keys, CONTEXTS * OFFSET_STEPS)
    coded = (error * sign).ravel()[order]
    centres = offset.ravel()[order]
    sorted_contexts = keys.ravel()[order] // OFFSET_STEPS
    rank = np.cumsum(np.diff(sorted_contexts, prepend=-1) != 0) - 1  # 0, 1, ... per context present
    tables, costs = _best_tables(rank, coded, centres, span)
    symbols = (coded + span).astype(np.int32)
    runs = [
        (int(tables[i]), key % OFFSET_STEPS, symbols[start:stop])
        for i, parts in enumerate(_by_context(present))
        for key, start, stop in parts
    ]
    return float(costs.sum()) + 8 * len(tables), tables.astype(np.uint8).tobytes(), runs, error


def _best_tables(context: np.ndarray, values: np.ndarray, offsets: np.ndarray, span: int) -> tuple[np.ndarray, np.ndarray]:
    """Per context 0, 1, ...: (the family member that codes its values, each at its centre,
    in the fewest bits; those bits).

    The encoder's choice only: one histogram per context over the (centre,
    value) pairs that occur, against every table's code lengths, in one
    matrix product.
    """
    if values.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    width = 2 * span + 1
    pairs = offsets * width + values + span
    occurs = np.bincount(pairs, minlength=OFFSET_STEPS * width) > 0
    columns = np.flatnonzero(occurs)
    column_of = np.cumsum(occurs) - 1
    count = int(context[-1]) + 1
    hist = np.bincount(context * len(columns) + column_of[pairs], minlength=count * len(columns))
    costs = hist.reshape(count, len(columns)).astype(np.float64) @ _code_lengths(span)[:, columns].T
    best = np.argmin(costs, axis=1)
    return best, costs[np.arange(count), best]


@lru_cache(maxsize=4)  # one per maximum error in use: a bench run codes D = 0, 1, 2 in turn
def _code_lengths(span: int) -> np.ndarray:
    """(ERROR_TABLES, OFFSET_STEPS·(2·span + 1)) bits of every (centre, value) under every family member."""
    return np.concatenate(
        [np.stack([-np.log2(error_table(i, span, j) / TABLE_TOTAL) for i in range(ERROR_TABLES)]) for j in range(OFFSET_STEPS)],
        axis=1,
    )


@lru_cache(maxsize=4096)
def _model(index: int, span: int, offset: int):
    table = error_table(index, span, offset).astype(np.float64) / TABLE_TOTAL
    return constriction.stream.model.Categorical(table, perfect=False)
