"""Tempered tables: a stage's fixed tables re-shaped for one image, channel by channel.

The shipped tables were fitted on training photos. An image whose symbols are
more (or less) concentrated than theirs pays for the mismatch in every row of a
channel. A tempered row has probabilities in proportion to f^t, f the row's
shipped frequencies and t = m/8 with m in `EIGHTHS`; the encoder picks m per
channel, where it saves more bits than its choice costs, and sends the choices
in front of the coded latent (`entropy.encode_latent`), each coded given the
one before it. results/codec-study/tempered-tables.md measures what it saves.

Both ends must form the same integers on every machine. f^(m/8) is a product of
f², f, √f, ∜f and ⁸√f, each a correctly rounded IEEE-754 operation, taken in a
fixed order; the normalisation to TABLE_TOTAL is integer arithmetic.
"""

from __future__ import annotations

import numpy as np

#: The temperatures a channel may take, in eighths: 5/8 .. 2. Their index in this tuple is what the file codes.
EIGHTHS = tuple(range(5, 17))
#: t = 1: the shipped rows as they are.
NEUTRAL = 8
#: Frequencies (each row summing to 2^16) of a channel's choice, indexed like EIGHTHS, given the
#: previous channel's choice (the row; NEUTRAL before the first): keeping it costs about 0.09 bits,
#: changing it about 7.5, so that long runs of one temperature (and of none) cost next to nothing.
_OTHER = 4095 // (len(EIGHTHS) - 1)
_SAME = (1 << 16) - _OTHER * (len(EIGHTHS) - 1)
CHOICE_FREQUENCIES = np.where(np.eye(len(EIGHTHS), dtype=bool), _SAME, _OTHER).astype(np.uint32)
#: Fixed-point scale of the tempered weights before normalisation: f^2 * 2^8 <= 2^40 for f <= 2^16, so
#: that a weight times TABLE_TOTAL stays below 2^63.
_WEIGHT_SCALE = 256.0


def temper_rows(pmfs: np.ndarray, sizes: np.ndarray, eighths: int, total: int) -> np.ndarray:
    """Rows of integer frequencies (n, K), each using its first sizes[i] + 1 entries and
    summing to `total`, tempered to t = eighths/8: (n, K) int64 rows summing to `total`,
    every used entry >= 1, the unused ones 0 (`temper_entries` on the used entries)."""
    pmfs = np.asarray(pmfs)
    used = np.arange(pmfs.shape[1]) <= np.asarray(sizes)[:, None]
    out = np.zeros(pmfs.shape, dtype=np.int64)
    out[used] = temper_entries(pmfs[used], used.sum(axis=1), eighths, total)
    return out


def temper_entries(frequencies: np.ndarray, lengths: np.ndarray, eighths: int, total: int) -> np.ndarray:
    """`temper_rows` on rows laid end to end: `frequencies` holds row after row, row i
    `lengths[i]` >= 1 entries summing to `total`; the tempered entries, int64, in the same places.

    Why laid end to end: a shipped table is as wide as its widest row (up to 168
    entries), and most rows use a handful, so the (rows, width) form worked mostly
    on entries no row uses.
    """
    if eighths not in EIGHTHS:
        raise ValueError(f"temperature must be one of {EIGHTHS} eighths, not {eighths}")
    frequencies = np.asarray(frequencies)
    lengths = np.asarray(lengths, dtype=np.int64)
    if eighths == NEUTRAL or not lengths.size:
        return frequencies.astype(np.int64)
    f = frequencies.astype(np.float64)
    root2 = np.sqrt(f)
    root4 = np.sqrt(root2)
    root8 = np.sqrt(root4)
    power = np.ones_like(f)
    for bit, factor in ((16, f * f), (8, f), (4, root2), (2, root4), (1, root8)):
        if eighths & bit:
            power = power * factor
    weights = np.floor(power * _WEIGHT_SCALE).astype(np.int64)
    starts = np.cumsum(lengths) - lengths
    row = np.repeat(np.arange(lengths.size), lengths)
    scaled = weights * (total - lengths)[row]
    whole = np.add.reduceat(weights, starts)[row]
    out = 1 + scaled // whole
    # Hand the rounding's remainder to the largest fractional parts, ties to the lower index.
    column = np.arange(f.size) - starts[row]
    order = np.lexsort((column, -(scaled % whole), row))
    rank = np.empty_like(order)
    rank[order] = column  # `order` keeps each row's entries in its own places, so this is the rank within the row
    deficit = total - np.add.reduceat(out, starts)
    return out + (rank < deficit[row])


def choice_bits() -> np.ndarray:
    """(previous, this) -> what coding this index of EIGHTHS after that one costs, in bits."""
    return -np.log2(CHOICE_FREQUENCIES / CHOICE_FREQUENCIES.sum(axis=1, keepdims=True))


def cheapest_choices(bits: np.ndarray) -> np.ndarray:
    """Indices into EIGHTHS for channels whose bits under each choice are `bits` (n, len(EIGHTHS)):
    the sequence of least total cost, the choices' own coding (`choice_bits`) included (Viterbi)."""
    if not len(bits):
        return np.zeros(0, dtype=np.int64)
    transition = choice_bits()
    total = transition[EIGHTHS.index(NEUTRAL)] + bits[0]  # the least cost of ending channel 0 on each choice
    back = []
    for row in bits[1:]:
        through = total[:, None] + transition  # (previous, this)
        back.append(np.argmin(through, axis=0))
        total = through[back[-1], np.arange(len(EIGHTHS))] + row
    path = [int(np.argmin(total))]
    for pointers in reversed(back):
        path.append(int(pointers[path[-1]]))
    return np.array(path[::-1], dtype=np.int64)
