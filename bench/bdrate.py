"""Bjøntegaard-delta rate: the average rate difference between two RD curves at equal quality.

Method (VCEG-M33, with the interpolation choice made explicit):

1. Each curve is a set of (rate, quality) points. Work with log rate, since codecs
   differ by factors of rate, and with quality as the independent variable.
2. Fit log rate as a function of quality for each curve, either
   - ``"pchip"`` (default): piecewise-cubic Hermite interpolation through the points
     (monotone, no overshoot; the variant used by JVET/AOM common test conditions),
     which stays faithful over long curves with many points, or
   - ``"cubic"``: one least-squares cubic polynomial, Bjøntegaard's original fit
     (exact for 4 points; over a wide 0.1-2 bpp sweep it can wiggle).
3. Integrate both fits over the overlapping quality interval only, take the mean
   difference of log rates and return ``exp(mean) - 1`` as a percentage.

Negative means the test codec needs fewer bits than the reference for the same
quality. Both methods give exactly 0 for identical curves and -50% for a curve at
half the rate, because those shift log rate by a constant.

PCHIP needs strictly increasing quality, so `rd_hull` first drops points that another
point beats (no more bits for no less quality) and sorts the rest by quality.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

METHODS = ("pchip", "cubic")


def rd_hull(rates: Sequence[float], qualities: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Points of the curve that are not dominated, as (log rate, quality) sorted by quality.

    Drops points with missing values, non-positive rates, and any point whose quality
    is not above that of every cheaper point.
    """
    pairs = sorted(
        (float(r), float(q))
        for r, q in zip(rates, qualities)
        if r is not None and q is not None and math.isfinite(r) and math.isfinite(q) and r > 0
    )
    kept: list[tuple[float, float]] = []
    for rate, quality in pairs:
        if kept and quality <= kept[-1][1]:
            continue
        if kept and rate == kept[-1][0]:
            kept[-1] = (rate, quality)
            continue
        kept.append((rate, quality))
    log_rates = np.log(np.array([r for r, _ in kept]))
    quals = np.array([q for _, q in kept])
    return log_rates, quals


def _integral(log_rates: np.ndarray, quals: np.ndarray, low: float, high: float, method: str) -> float:
    if method == "pchip":
        from scipy.interpolate import PchipInterpolator

        return float(PchipInterpolator(quals, log_rates).integrate(low, high))
    if method == "cubic":
        degree = min(3, len(quals) - 1)
        antiderivative = np.polyint(np.polyfit(quals, log_rates, degree))
        return float(np.polyval(antiderivative, high) - np.polyval(antiderivative, low))
    raise ValueError(f"unknown BD-rate method {method!r}; use one of {METHODS}")


def bd_rate(
    ref_rates: Sequence[float],
    ref_quals: Sequence[float],
    test_rates: Sequence[float],
    test_quals: Sequence[float],
    method: str = "pchip",
) -> float | None:
    """BD-rate of the test curve against the reference, in percent (None if it cannot be computed).

    None means fewer than two usable points on a curve or no overlap in quality;
    a number from a sliver of overlap should not be trusted, so callers may want
    to report the overlap too (`overlap`).
    """
    ref = rd_hull(ref_rates, ref_quals)
    test = rd_hull(test_rates, test_quals)
    return _bd_between(ref, test, _overlap(ref[1], test[1]), method)


def bd_rate_in_window(
    ref_rates: Sequence[float],
    ref_quals: Sequence[float],
    test_rates: Sequence[float],
    test_quals: Sequence[float],
    low_rate: float,
    high_rate: float,
    method: str = "pchip",
) -> float | None:
    """BD-rate over the qualities both curves reach between `low_rate` and `high_rate`.

    Targets are often stated over a rate window ("over 0.25-1.5 bpp") rather than
    over whole curves, whose ends (a codec's very lowest or highest settings) can
    move a whole-curve figure. Each curve's quality at the window's ends is read
    on its hull, linear in log rate (clamped to the curve's own ends); the
    integral runs over the part of the quality axis both curves cover there.
    """
    ref = rd_hull(ref_rates, ref_quals)
    test = rd_hull(test_rates, test_quals)
    if len(ref[1]) < 2 or len(test[1]) < 2:
        return None
    ends = [np.interp(np.log([low_rate, high_rate]), log_rates, quals) for log_rates, quals in (ref, test)]
    low, high = max(e[0] for e in ends), min(e[1] for e in ends)
    return _bd_between(ref, test, (float(low), float(high)) if high > low else None, method)


def _bd_between(ref, test, interval: tuple[float, float] | None, method: str) -> float | None:
    """exp(mean log-rate difference over the quality `interval`) − 1, in percent."""
    if interval is None:
        return None
    low, high = interval
    mean_diff = (
        _integral(*test, low, high, method) - _integral(*ref, low, high, method)
    ) / (high - low)
    return 100.0 * (math.exp(mean_diff) - 1.0)


def overlap(ref_quals: Sequence[float], test_quals: Sequence[float]) -> tuple[float, float] | None:
    """The quality interval both curves cover, or None."""
    clean = [np.array([q for q in qs if q is not None and math.isfinite(q)]) for qs in (ref_quals, test_quals)]
    return _overlap(*clean)


def _overlap(ref_quals: np.ndarray, test_quals: np.ndarray) -> tuple[float, float] | None:
    if len(ref_quals) < 2 or len(test_quals) < 2:
        return None
    low = max(ref_quals.min(), test_quals.min())
    high = min(ref_quals.max(), test_quals.max())
    if not high > low:
        return None
    return float(low), float(high)
