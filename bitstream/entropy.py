"""Entropy coding of integer latents with constriction, from fixed integer tables.

This is the only module that talks to the entropy coder. A latent is a 2-D int32
array of shape (channels, positions). Every channel has `contexts` probability
tables; which one codes a symbol is decided by integer contexts computed from
symbols already decoded (`contexts.py`). Tables are integer frequency counts
(`SymbolTables`), built once when a model is trained and shipped with its
weights. The coder is therefore fed exactly the same model on the encoder's and
on the decoder's machine: nothing it sees depends on floating-point work done on
the image.

A few smooth channels (`SymbolTables.predicted`) are coded instead in raster
order as differences from a prediction out of their decoded neighbours, with
tables of their own (`prediction.py`). Tables fitted with sign alignment
(`SymbolTables.sign_aligned`) code each second-half symbol negated where its
first-half neighbours lean negative (`contexts.sign_orientation`). A payload
may re-shape each context-coded channel's rows for its image: it then begins
with one temperature choice per such channel (`temper.py`).

Values outside a channel's table are coded as an escape symbol followed by the raw
value (uniform over the 16-bit range), so any int16 latent round-trips exactly.

The payload is one ANS word stream (`ans.py`); decoding checks that every word
was consumed, which catches truncated or padded payloads.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import constriction
import numpy as np

from . import ans
from .contexts import (
    CONTEXTS,
    PRIOR_LEVELS,
    activity_bucket,
    checker_halves,
    checker_levels,
    context_id,
    context_ids,
    orientation_from_lean,
    sign_lean,
    sign_orientation,
)
from .errors import CdcFormatError
from .prediction import PREDICTION_CONTEXTS, predict_at, prediction_contexts
from .temper import CHOICE_FREQUENCIES, EIGHTHS, NEUTRAL, cheapest_choices, temper_entries

#: Every table row sums to this. 16 bits keep rows exact in float64 and leave
#: constriction's own 24-bit fixed-point quantization plenty of room.
TABLE_TOTAL = 1 << 16

#: Latent values must lie in this range (int16); the escape path codes them raw.
LATENT_MIN = -(1 << 15)
LATENT_MAX = (1 << 15) - 1
_RAW_SIZE = 1 << 16

#: Symbols per channel and per payload that a decoder will agree to produce.
MAX_POSITIONS = 1 << 28
PAYLOAD = "entropy-coded payload"


@dataclass(frozen=True)
class SymbolTables:
    """Discrete distributions over contiguous ranges of integers, one per table row.

    Row r covers the values ``offsets[r] .. offsets[r] + sizes[r] - 1`` with
    frequencies ``pmfs[r, :sizes[r]]``; ``pmfs[r, sizes[r]]`` is the escape
    frequency. Every used frequency is >= 1 and each row sums to TABLE_TOTAL.
    With ``contexts`` > 1, row ``c * contexts + k`` codes channel c in context k.

    The channels listed in ``predicted`` (ascending) are coded by prediction
    (`prediction.py`): their symbol minus the prediction is coded with
    ``residuals``, tables of PREDICTION_CONTEXTS contexts whose channel j
    serves ``predicted[j]``; their own rows here go unused.

    With ``sign_aligned`` the context-coded channels' rows code their symbols
    multiplied by `contexts.sign_orientation`, as the tables were fitted
    (predicted channels are coded as they are).
    """

    offsets: np.ndarray  # int32 (R,)
    sizes: np.ndarray  # int32 (R,)
    pmfs: np.ndarray  # uint32 (R, K) with K >= max(sizes) + 1
    contexts: int = 1
    predicted: tuple[int, ...] = ()
    residuals: SymbolTables | None = None
    sign_aligned: bool = False

    def __post_init__(self) -> None:
        offsets = np.asarray(self.offsets)
        sizes = np.asarray(self.sizes)
        pmfs = np.asarray(self.pmfs)
        if offsets.ndim != 1 or sizes.shape != offsets.shape or pmfs.ndim != 2:
            raise ValueError("tables: offsets, sizes must be (R,) and pmfs (R, K)")
        if pmfs.shape[0] != offsets.shape[0] or pmfs.shape[1] < int(sizes.max()) + 1:
            raise ValueError("tables: pmfs has the wrong shape for sizes")
        if self.contexts not in (1, CONTEXTS, PREDICTION_CONTEXTS) or offsets.shape[0] % self.contexts:
            raise ValueError(f"tables: contexts must be 1, {CONTEXTS} or {PREDICTION_CONTEXTS} and divide the row count")
        if self.sign_aligned and self.contexts != CONTEXTS:
            raise ValueError("tables: sign alignment needs the checkerboard's context tables")
        self._check_predicted()
        if (sizes < 1).any():
            raise ValueError("tables: every row needs at least one symbol")
        # Row r's entries are pmfs[r, :sizes[r] + 1]; checked for all rows at once (a
        # model holds hundreds of thousands of rows, and a Python loop over them was
        # most of the time it took to load one).
        in_row = np.arange(pmfs.shape[1]) <= sizes[:, None]
        used = np.where(in_row, pmfs, 0).astype(np.int64)
        bad = ((used < 1) & in_row).any(axis=1) | (used.sum(axis=1) != TABLE_TOTAL)
        if bad.any():
            raise ValueError(f"tables: row {int(np.argmax(bad))} is not a valid frequency table")

    def _check_predicted(self) -> None:
        predicted = self.predicted
        if not predicted:
            if self.residuals is not None:
                raise ValueError("tables: residual tables without predicted channels")
            return
        if self.contexts != CONTEXTS or list(predicted) != sorted(set(predicted)):
            raise ValueError("tables: predicted channels need context tables and must ascend without repeats")
        if predicted[0] < 0 or predicted[-1] >= self.channels:
            raise ValueError("tables: a predicted channel is out of range")
        residuals = self.residuals
        if residuals is None or residuals.contexts != PREDICTION_CONTEXTS or residuals.channels != len(predicted):
            raise ValueError("tables: residual tables do not match the predicted channels")

    @functools.cached_property
    def bit_costs(self) -> np.ndarray:
        """-log2 of every table entry, (R, K) (inf past a row's end); computed once, for `move_bits`."""
        with np.errstate(divide="ignore"):
            return -np.log2(self.pmfs.astype(np.float64) / TABLE_TOTAL)

    @property
    def channels(self) -> int:
        return int(self.offsets.shape[0]) // self.contexts

    def row(self, channel: int, context: int) -> int:
        return channel * self.contexts + (context if self.contexts > 1 else 0)

    def probabilities(self, row: int) -> np.ndarray:
        """Row `row` as exact float64 probabilities (regular symbols, then escape)."""
        size = int(self.sizes[row])
        return self.pmfs[row, : size + 1].astype(np.float64) / TABLE_TOTAL

    def row_entries(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The used entries of `rows` (regular symbols, then escape) laid end to end, how
        many each row has, and where each row starts: the entries and lengths are the form
        `temper.temper_entries` tempers."""
        lengths = self.sizes[rows].astype(np.int64) + 1
        starts = np.cumsum(lengths) - lengths
        columns = np.arange(int(lengths.sum())) - np.repeat(starts, lengths)
        return self.pmfs[np.repeat(rows, lengths), columns], lengths, starts

    def ideal_bits(self, symbols: np.ndarray, prior: np.ndarray | None = None, grid: tuple[int, int] | None = None) -> float:
        """Information content of `symbols` under these tables (escape payload included).

        Used only to choose tables and to report estimates; real rates are always
        taken from the coded bytes.
        """
        symbols, prior, grid, coded, groups = _prepared(self, symbols, prior, grid)
        total = 0.0
        for c, rows in groups:
            if rows is None:
                total += self._predicted_bits(c, symbols[c], prior[c], grid)
                continue
            for r, positions in rows:
                idx, escaped = _to_indices(coded[c][positions], int(self.offsets[r]), int(self.sizes[r]))
                total -= float(np.log2(self.probabilities(r)[idx]).sum())
                total += 16.0 * int(escaped.sum())
        return total

    def _predicted_bits(self, channel: int, values: np.ndarray, prior: np.ndarray, grid: tuple[int, int]) -> float:
        residuals = self.residuals
        j = self.predicted.index(channel)
        prediction, ids = prediction_contexts(values.reshape(grid), prior)
        total = 0.0
        for k in np.unique(ids).tolist():
            r = residuals.row(j, k)
            at = ids == k
            idx, escaped = _to_indices(values[at] - prediction[at], int(residuals.offsets[r]), int(residuals.sizes[r]))
            total -= float(np.log2(residuals.probabilities(r)[idx]).sum())
            total += 16.0 * int(escaped.sum())
        return total


def move_bits(
    tables: SymbolTables, symbols: np.ndarray, prior: np.ndarray | None, grid: tuple[int, int] | None, deltas: tuple[int, ...] = (-1, 1)
) -> np.ndarray:
    """Bits each symbol of a (C, N) latent would cost changed by each of `deltas`,
    minus what it costs now: (len(deltas), C, N).

    Every symbol keeps the context it has now (the change a move makes to its
    neighbours' contexts is left out): an estimate that lets an encoder rank
    single-symbol moves by their rate (`codec.symbol_search`), which then accepts
    or rejects them on `ideal_bits`. Symbols of predicted channels cannot be
    moved this way (their cost depends on their neighbours): +inf there. With
    sign-aligned tables a move that changes a first-half symbol's sign can
    re-orient its second-half neighbours, and what that costs them is counted.
    """
    symbols = _check_symbols(symbols, tables.channels)
    prior = _check_prior(prior, tables.channels, symbols.shape[1])
    grid = _check_grid(grid, symbols.shape[1])
    ids = context_ids(symbols, prior, grid) if tables.contexts > 1 else 0
    lean = sign_lean(symbols, grid) if tables.sign_aligned else None
    orientation = 1 if lean is None else orientation_from_lean(lean)
    rows = np.arange(tables.channels)[:, None] * tables.contexts + ids
    cost = tables.bit_costs
    offsets, sizes = tables.offsets.astype(np.int64)[rows], tables.sizes.astype(np.int64)[rows]

    def bits(values: np.ndarray) -> np.ndarray:
        idx = values * orientation - offsets
        escaped = (idx < 0) | (idx >= sizes)
        return cost[rows, np.where(escaped, sizes, idx)] + 16.0 * escaped

    now = bits(symbols)
    change = np.stack([bits(symbols + delta) - now for delta in deltas])
    if lean is not None:
        change += _reorientation_bits(symbols, grid, lean, bits(-symbols) - now, deltas)
    change[:, list(tables.predicted)] = np.inf
    return change


def _reorientation_bits(
    symbols: np.ndarray, grid: tuple[int, int], lean: np.ndarray, flip_bits: np.ndarray, deltas: tuple[int, ...]
) -> np.ndarray:
    """(len(deltas), C, N): for each first-half symbol and move, the change of bits of its
    4 second-half neighbours whose orientation the move's change of sign turns over
    (`lean`: the symbols' `sign_lean`; `flip_bits`: what turning each symbol's orientation
    over costs it); 0 on the second half."""
    channels = symbols.shape[0]
    h, w = grid
    shape = (channels, h, w)
    lean = lean.reshape(shape)
    flip_bits = flip_bits.reshape(shape)
    first = np.zeros(h * w, dtype=bool)
    first[checker_halves(grid)[0]] = True
    sign = np.sign(symbols)
    out = np.zeros((len(deltas), *shape))
    for i, delta in enumerate(deltas):
        turn = ((np.sign(symbols + delta) - sign) * first).reshape(shape)
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            lean_there, flip_there = _at_neighbour(lean, dy, dx), _at_neighbour(flip_bits, dy, dx)
            out[i] += np.where((lean_there + turn < 0) != (lean_there < 0), flip_there, 0.0)
    return out.reshape(len(deltas), channels, -1)


def _at_neighbour(values: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """values[..., y + dy, x + dx] at every (y, x); 0 where that lies outside the grid."""
    out = np.zeros_like(values)
    h, w = values.shape[-2:]
    out[..., max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)] = values[
        ..., max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)
    ]
    return out


def tables_from_counts(
    counts: np.ndarray,
    offsets: np.ndarray,
    sizes: np.ndarray | None = None,
    escape_weight: float = 1.0,
    contexts: int = 1,
) -> SymbolTables:
    """Turn per-channel histograms into integer tables.

    `counts[c, i]` counts how often value ``offsets[c] + i`` was seen; only the
    first `sizes[c]` entries of row c are used (all of them when `sizes` is None).
    Every value keeps a frequency of at least 1, so unseen values stay codable,
    and the escape symbol gets roughly `escape_weight` observations' worth of mass.
    """
    counts = np.asarray(counts, dtype=np.float64)
    channels, width = counts.shape
    sizes = np.full(channels, width, dtype=np.int32) if sizes is None else np.asarray(sizes, dtype=np.int32)
    if sizes.shape != (channels,) or (sizes < 1).any() or (sizes > width).any():
        raise ValueError("sizes must be (C,) with 1 <= size <= counts.shape[1]")
    pmfs = np.zeros((channels, width + 1), dtype=np.uint32)
    for c in range(channels):
        row = np.append(counts[c, : sizes[c]], escape_weight) + 1e-3
        pmfs[c, : sizes[c] + 1] = _quantize_row(row / row.sum())
    return SymbolTables(offsets=np.asarray(offsets, dtype=np.int32), sizes=sizes, pmfs=pmfs, contexts=contexts)


def _quantize_row(probs: np.ndarray) -> np.ndarray:
    """Integer frequencies >= 1 summing to TABLE_TOTAL, close to `probs`."""
    n = probs.shape[0]
    if n >= TABLE_TOTAL:
        raise ValueError("table row too long")
    freqs = np.maximum(1, np.floor(probs * (TABLE_TOTAL - n)).astype(np.int64) + 1)
    # Hand out (or take back) the remainder by the largest entries, deterministically.
    diff = TABLE_TOTAL - int(freqs.sum())
    order = np.argsort(-freqs, kind="stable")
    i = 0
    while diff != 0:
        j = order[i % n]
        if diff > 0:
            freqs[j] += 1
            diff -= 1
        elif freqs[j] > 1:
            freqs[j] -= 1
            diff += 1
        i += 1
    return freqs.astype(np.uint32)


def encode_latent(
    symbols: np.ndarray,
    tables: SymbolTables,
    prior: np.ndarray | None = None,
    grid: tuple[int, int] | None = None,
    temperatures: np.ndarray | None = None,
) -> bytes:
    """Code an int latent of shape (C, N) laid out on `grid` (h, w with h·w = N; one row when None).

    `prior` holds the previous-stage levels, (C, N) or (N,). `temperatures`, when
    given, holds every channel's temperature in eighths (`temper.EIGHTHS`; NEUTRAL
    for predicted channels, which are not tempered, e.g. from `choose_temperatures`):
    the payload then begins with the context-coded channels' choices, and the
    decoder must be told so.
    """
    eighths = _check_temperatures(tables, temperatures)
    symbols, prior, grid, coded, groups = _prepared(tables, symbols, prior, grid)
    if symbols.size and (symbols.min() < LATENT_MIN or symbols.max() > LATENT_MAX):
        raise ValueError("latent values must fit in int16")
    coder = ans.new_encoder()
    raw_model = constriction.stream.model.Uniform(_RAW_SIZE)
    models, residual_models = _RowModels(tables), _RowModels(tables.residuals)
    # ANS is a stack: push the last thing the decoder reads first.
    for c, rows in reversed(groups):
        if rows is None:
            _encode_predicted(coder, raw_model, residual_models, tables, c, symbols[c], prior[c], grid)
            continue
        for r, positions in reversed(rows):
            values = coded[c][positions]
            idx, escaped = _to_indices(values, int(tables.offsets[r]), int(tables.sizes[r]))
            if escaped.any():
                coder.encode_reverse((values[escaped] - LATENT_MIN).astype(np.int32), raw_model)
            coder.encode_reverse(idx, models(r, int(eighths[c])))
    if temperatures is not None:
        chosen = [EIGHTHS.index(int(eighths[c])) for c in _tempered_channels(tables)]
        for previous, choice in reversed(list(zip([EIGHTHS.index(NEUTRAL)] + chosen[:-1], chosen))):
            coder.encode_reverse(np.array([choice], dtype=np.int32), _choice_model(previous))
    return ans.to_bytes(coder)


def choose_temperatures(tables: SymbolTables, symbols: np.ndarray, prior: np.ndarray | None = None, grid: tuple[int, int] | None = None) -> np.ndarray:
    """Every channel's temperature in eighths (C,) that codes this latent in the fewest bits,
    the choices' own cost included (`temper.cheapest_choices`), for `encode_latent(..., temperatures=)`.

    Bits are counted as the coder spends them. One thing a plain count of
    −log2 p would get wrong: the coder's state starts empty, and a symbol at its
    row's first entry (cumulative frequency 0) pushed onto an empty state leaves
    it empty. The run of such symbols that the decoder reads last therefore costs
    nothing at any temperature (at low rates, whole channels of zeros), and is
    left out here.
    """
    _, _, _, coded, channel_rows = _prepared(tables, symbols, prior, grid)
    groups = []  # per context-coded channel, in coding order: (channel, [(row, indices)])
    for c, rows in channel_rows:
        if rows is not None:
            groups.append((c, [(r, _to_indices(coded[c][positions], int(tables.offsets[r]), int(tables.sizes[r]))[0]) for r, positions in rows]))
    free_from = _free_tail(groups, tables)
    counted = []  # (channel, (contexts, K) counts of its entries) up to the free tail
    for g, (c, rows) in enumerate(groups[:free_from[0] + 1]):
        counts = np.zeros((tables.contexts, tables.pmfs.shape[1]), dtype=np.int64)
        for k, (r, idx) in enumerate(rows):
            if (g, k) == free_from[:2]:
                idx = idx[: free_from[2]]
            elif (g, k) > free_from[:2]:
                break
            counts[r % tables.contexts] += np.bincount(idx, minlength=counts.shape[1])
        counted.append((c, counts))
    bits = np.zeros((len(groups), len(EIGHTHS)))
    bits[: len(counted)] = _tempered_bits(tables, counted)
    chosen = np.full(tables.channels, NEUTRAL, dtype=np.int64)
    chosen[[c for c, _ in groups]] = np.asarray(EIGHTHS)[cheapest_choices(bits)]
    return chosen


def _tempered_bits(tables: SymbolTables, counted: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """(len(counted), len(EIGHTHS)): the bits of each (channel, counts) pair's counted entries
    under its rows at every temperature. Only the rows that code something are tempered,
    every channel's together, one temperature at a time."""
    if not counted:
        return np.zeros((0, len(EIGHTHS)))
    coding = [np.flatnonzero(counts.any(axis=1)) for _, counts in counted]  # per channel: its rows that code something
    entries, lengths, starts = tables.row_entries(np.concatenate([c * tables.contexts + k for (c, _), k in zip(counted, coding)]))
    where, how_many = [], []  # per channel: its counted entries' places in `entries`, and their counts
    first_row = 0
    for (_, counts), k in zip(counted, coding):
        used = counts[k]
        row, column = np.nonzero(used)
        where.append(starts[first_row + row] + column)
        how_many.append(used[row, column])
        first_row += k.size
    bits = np.zeros((len(counted), len(EIGHTHS)))
    for k, eighths in enumerate(EIGHTHS):
        tempered = temper_entries(entries, lengths, eighths, TABLE_TOTAL)
        for g, (places, times) in enumerate(zip(where, how_many)):
            bits[g, k] = -float(times @ np.log2(tempered[places] / TABLE_TOTAL))
    return bits


def _free_tail(groups: list, tables: SymbolTables) -> tuple[int, int, int]:
    """(channel group, row, position) where the run of first-entry symbols that ends the
    context-coded symbols starts (see `choose_temperatures`). Counted only after the last
    predicted channel, whose symbols (differences from a prediction) rarely sit at a
    row's first entry."""
    last_predicted = tables.predicted[-1] if tables.predicted else -1
    for g in range(len(groups) - 1, -1, -1):
        if groups[g][0] < last_predicted:
            return (g + 1, 0, 0)
        rows = groups[g][1]
        for k in range(len(rows) - 1, -1, -1):
            nonzero = np.flatnonzero(rows[k][1])
            if nonzero.size:
                return (g, k, int(nonzero[-1]) + 1)
    return (0, 0, 0)


def _tempered_channels(tables: SymbolTables) -> list[int]:
    """The channels whose rows a tempered payload re-shapes: every channel not coded by prediction."""
    return [c for c in range(tables.channels) if c not in tables.predicted]


def _check_temperatures(tables: SymbolTables, temperatures: np.ndarray | None) -> np.ndarray:
    """Per-channel eighths as (C,) ints, all NEUTRAL when None."""
    if temperatures is None:
        return np.full(tables.channels, NEUTRAL, dtype=np.int64)
    eighths = np.asarray(temperatures)
    if eighths.shape != (tables.channels,) or not np.isin(eighths, EIGHTHS).all():
        raise ValueError(f"temperatures must be ({tables.channels},) values from {EIGHTHS}")
    if any(int(eighths[c]) != NEUTRAL for c in tables.predicted):
        raise ValueError("predicted channels are not tempered")
    return eighths.astype(np.int64)


def decode_latent(
    payload: bytes,
    tables: SymbolTables,
    positions: int,
    prior: np.ndarray | None = None,
    grid: tuple[int, int] | None = None,
    tempered: bool = False,
) -> np.ndarray:
    """Inverse of `encode_latent` (`tempered`: whether it was given temperatures);
    raises CdcFormatError on any inconsistency."""
    if not 0 <= positions <= MAX_POSITIONS:
        raise CdcFormatError("latent size out of range")
    coder = ans.open_decoder(payload, PAYLOAD)
    raw_model = constriction.stream.model.Uniform(_RAW_SIZE)
    walk = _ContextWalk(tables, _check_prior(prior, tables.channels, positions), _check_grid(grid, positions))
    models, residual_models = _RowModels(tables), _RowModels(tables.residuals)
    out = np.zeros((tables.channels, positions), dtype=np.int32)
    eighths = np.full(tables.channels, NEUTRAL, dtype=np.int64)
    try:
        if tempered:
            choice = EIGHTHS.index(NEUTRAL)
            for c in _tempered_channels(tables):
                choice = int(coder.decode(_choice_model(choice), 1)[0])
                eighths[c] = EIGHTHS[choice]
        for c in range(tables.channels):
            if c in walk.predicted:
                out[c] = _decode_predicted(coder, raw_model, residual_models, tables, c, walk.prior[c], walk.grid)
                walk.done(out[c])
                continue
            for half in (walk.first_half, walk.second_half):
                for r, where in half(c, out[c]):
                    size = int(tables.sizes[r])
                    idx = np.asarray(coder.decode(models(r, int(eighths[c])), len(where)), dtype=np.int32)
                    values = idx + int(tables.offsets[r])
                    escaped = idx == size
                    if escaped.any():
                        raw = np.asarray(coder.decode(raw_model, int(escaped.sum())), dtype=np.int32)
                        values[escaped] = raw + LATENT_MIN
                    out[c, where] = values
            if tables.sign_aligned:  # the second half was coded oriented by the first
                out[c] *= sign_orientation(out[c : c + 1], walk.grid)[0].astype(np.int32)
            walk.done(out[c])
    except Exception as exc:
        raise CdcFormatError(f"{PAYLOAD} is corrupt ({exc})") from None
    ans.check_exhausted(coder, PAYLOAD)
    return out


def _coded_values(tables: SymbolTables, symbols: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """The values the context tables code: the symbols, oriented where the tables are sign-aligned."""
    return symbols * sign_orientation(symbols, grid) if tables.sign_aligned else symbols


def _prepared(tables: SymbolTables, symbols: np.ndarray, prior: np.ndarray | None, grid: tuple[int, int] | None):
    """What coding a latent, choosing its temperatures and counting its bits start from: the
    checked symbols, prior and grid, the values the context tables code, and every channel's
    rows and positions in coding order (`_channel_rows`, as a list)."""
    symbols = _check_symbols(symbols, tables.channels)
    prior = _check_prior(prior, tables.channels, symbols.shape[1])
    grid = _check_grid(grid, symbols.shape[1])
    coded = _coded_values(tables, symbols, grid)
    return symbols, prior, grid, coded, list(_channel_rows(tables, coded, prior, grid))


def _channel_rows(tables: SymbolTables, symbols: np.ndarray, prior: np.ndarray, grid: tuple[int, int]):
    """For every channel: the table rows it uses and the positions each row codes, in coding order
    (None for a predicted channel). `prior` and `grid` as `_check_prior` and `_check_grid` return them."""
    walk = _ContextWalk(tables, prior, grid)
    for c in range(tables.channels):
        yield c, None if c in walk.predicted else walk.first_half(c, symbols[c]) + walk.second_half(c, symbols[c])
        walk.done(symbols[c])


def _encode_predicted(coder, raw_model, models: _RowModels, tables: SymbolTables, channel: int, values: np.ndarray, prior: np.ndarray, grid: tuple[int, int]) -> None:
    """Push a predicted channel so that `_decode_predicted` reads it in raster order."""
    residuals = tables.residuals
    j = tables.predicted.index(channel)
    prediction, ids = prediction_contexts(values.reshape(grid), prior)
    for p in range(values.shape[0] - 1, -1, -1):
        r = residuals.row(j, int(ids[p]))
        size = int(residuals.sizes[r])
        idx = int(values[p]) - int(prediction[p]) - int(residuals.offsets[r])
        if not 0 <= idx < size:
            coder.encode_reverse(int(values[p]) - LATENT_MIN, raw_model)
            idx = size
        coder.encode_reverse(idx, models(r))


def _decode_predicted(coder, raw_model, models: _RowModels, tables: SymbolTables, channel: int, prior: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """One predicted channel, position by position in raster order (each prediction needs the one before)."""
    residuals = tables.residuals
    j = tables.predicted.index(channel)
    h, w = grid
    prior = prior.tolist()
    plane: list[list[int]] = []
    for y in range(h):
        row: list[int] = []
        plane.append(row)
        for x in range(w):
            prediction, level = predict_at(plane, y, x)
            r = residuals.row(j, level * PRIOR_LEVELS + prior[y * w + x])
            idx = coder.decode(models(r))
            if idx == int(residuals.sizes[r]):
                value = coder.decode(raw_model) + LATENT_MIN
            else:
                value = prediction + idx + int(residuals.offsets[r])
            if not LATENT_MIN <= value <= LATENT_MAX:
                raise CdcFormatError(f"{PAYLOAD} is corrupt (a predicted symbol leaves the int16 range)")
            row.append(value)
    return np.asarray(plane, dtype=np.int32).reshape(-1)


class _ContextWalk:
    """The contexts of `contexts.py`, channel by channel and half by half, as encoder and decoder see them.

    `first_half(c, values)` and `second_half(c, values)` give the (row, positions)
    pairs of channel c's two checkerboard halves; `second_half` reads the
    channel's first-half values (decoded by then); `done(values)` records the
    finished channel. Tables with one context per channel code every position
    of a channel with its one row, in the first half's call.
    """

    def __init__(self, tables: SymbolTables, prior: np.ndarray, grid: tuple[int, int]):
        self.tables, self.prior, self.grid = tables, prior, grid
        self.predicted = frozenset(tables.predicted)
        self.first, self.second = checker_halves(grid)
        self.nonzero = np.zeros(grid[0] * grid[1], dtype=np.int64)
        self.activity = self.nonzero

    def first_half(self, channel: int, values: np.ndarray) -> list[tuple[int, np.ndarray]]:
        if self.tables.contexts == 1:
            return [(self.tables.row(channel, 0), np.arange(self.nonzero.shape[0]))]
        self.activity = activity_bucket(self.nonzero, self.grid)
        ids = context_id(self.activity[self.first], 0, self.prior[channel, self.first])
        return _grouped(self.tables, channel, ids, self.first)

    def second_half(self, channel: int, values: np.ndarray) -> list[tuple[int, np.ndarray]]:
        if self.tables.contexts == 1:
            return []
        levels = checker_levels(values, self.grid, self.first, self.second)
        ids = context_id(self.activity[self.second], levels, self.prior[channel, self.second])
        return _grouped(self.tables, channel, ids, self.second)

    def done(self, values: np.ndarray) -> None:
        self.nonzero = self.nonzero + (values != 0)


def _grouped(tables: SymbolTables, channel: int, ids: np.ndarray, positions: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(row, positions) pairs ordered by context id; within a group positions stay ascending."""
    # One stable sort instead of a comparison per context (a radix sort on 16-bit keys).
    order = np.argsort(ids.astype(np.int16), kind="stable")
    counts = np.bincount(ids, minlength=tables.contexts)
    stops = np.cumsum(counts)
    return [
        (tables.row(channel, k), positions[order[stops[k] - counts[k] : stops[k]]])
        for k in np.flatnonzero(counts).tolist()
    ]


def _check_grid(grid: tuple[int, int] | None, positions: int) -> tuple[int, int]:
    """The latent grid (h, w) with h·w = positions; None means one row."""
    if grid is None:
        return (1, positions)
    h, w = (int(v) for v in grid)
    if h < 0 or w < 0 or h * w != positions:
        raise ValueError(f"latent grid {h}x{w} does not hold {positions} positions")
    return (h, w)


def _check_prior(prior: np.ndarray | None, channels: int, positions: int) -> np.ndarray:
    """Prior levels as (C, N): None means level 0, an (N,) array applies to every channel."""
    if prior is None:
        return np.zeros((channels, positions), dtype=np.int64)
    prior = np.asarray(prior, dtype=np.int64)
    if prior.shape == (positions,):
        prior = np.broadcast_to(prior, (channels, positions))
    if prior.shape != (channels, positions) or (prior.size and (prior.min() < 0 or prior.max() >= PRIOR_LEVELS)):
        raise ValueError("prior levels must be (N,) or (C, N) integers in range")
    return prior


class _RowModels:
    """One call's constriction models of a table's rows, tempered or not, each built on
    first use: `models(row, eighths)`.

    Why per call: a call codes a context row once per checkerboard half, and a
    predicted channel's few residual rows at every position, so its own models
    catch the reuse there is. Kept with the tables for the life of a process (until
    session 64), the models and the tempered rows behind them grew with every image
    coded, to 10 GB in a bench worker. The models are a pure function of the rows'
    integer frequencies, so where they are kept changes no coded bit.
    """

    def __init__(self, tables: SymbolTables | None):
        self.tables = tables
        self.models: dict = {}
        # The tempered rows of one channel at one temperature, laid end to end
        # (`SymbolTables.row_entries`): channels are coded one after another.
        self.tempered_key: tuple[int, int] | None = None
        self.tempered: np.ndarray = np.zeros(0, dtype=np.int64)
        self.starts: np.ndarray = np.zeros(0, dtype=np.int64)

    def __call__(self, row: int, eighths: int = NEUTRAL):
        key = (row, eighths)
        model = self.models.get(key)
        if model is None:
            model = self.models[key] = constriction.stream.model.Categorical(self.probabilities(row, eighths), perfect=False)
        return model

    def probabilities(self, row: int, eighths: int) -> np.ndarray:
        """Row `row` tempered to t = eighths/8, as exact float64 probabilities (regular symbols, then escape)."""
        tables = self.tables
        if eighths == NEUTRAL:
            return tables.probabilities(row)
        channel, context = divmod(row, tables.contexts)
        if self.tempered_key != (channel, eighths):
            entries, lengths, self.starts = tables.row_entries(np.arange(channel * tables.contexts, (channel + 1) * tables.contexts))
            self.tempered_key = (channel, eighths)
            self.tempered = temper_entries(entries, lengths, eighths, TABLE_TOTAL)
        start = int(self.starts[context])
        return self.tempered[start : start + int(tables.sizes[row]) + 1] / TABLE_TOTAL


@functools.cache
def _choice_model(previous: int):
    """The fixed model of a tempered channel's choice after choice `previous` (`temper.CHOICE_FREQUENCIES`)."""
    return constriction.stream.model.Categorical(CHOICE_FREQUENCIES[previous].astype(np.float64) / TABLE_TOTAL, perfect=False)


def _to_indices(values: np.ndarray, offset: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    idx = values.astype(np.int64) - offset
    escaped = (idx < 0) | (idx >= size)
    idx = np.where(escaped, size, idx).astype(np.int32)
    return idx, escaped


def _check_symbols(symbols: np.ndarray, channels: int) -> np.ndarray:
    symbols = np.asarray(symbols)
    if symbols.ndim != 2 or symbols.shape[0] != channels:
        raise ValueError(f"expected a ({channels}, N) latent, got shape {symbols.shape}")
    if not np.issubdtype(symbols.dtype, np.integer):
        raise ValueError("latent symbols must be integers")
    return symbols.astype(np.int64, copy=False)
