"""One rate-distortion curve per codec from many images, and reading it at a given rate.

Averaging method: *per setting*. For each codec setting (JPEG quality 50, cdcodec
stage 2, ...) take the arithmetic mean over images of bpp and of each quality
measure (PSNR in dB as measured, SSIM and MS-SSIM as raw scores). This is what
CompressAI and most learned-compression papers plot; it keeps each point an
operating point a user can actually choose. Its caveat: averaging PSNR in dB
weighs easy images as much as hard ones, and a point mixes images at different
rates. Quality values that are None (an exact reconstruction has no PSNR; a small
image has no MS-SSIM) are left out of that mean, and ``n`` records how many images
each mean used.
"""

from __future__ import annotations

import math
from collections import defaultdict
from statistics import fmean
from typing import Iterable

import numpy as np

from .metrics import to_db

QUALITY_KEYS = ("psnr", "ssim", "ms_ssim")


def _mean(values: Iterable[float | None]) -> tuple[float | None, int]:
    present = [v for v in values if v is not None]
    return (fmean(present) if present else None), len(present)


def average_curve(measurements: Iterable[dict], codec: str) -> list[dict]:
    """The codec's per-setting averages, sorted by mean bpp."""
    by_setting: dict = defaultdict(list)
    for record in measurements:
        if record["codec"] == codec:
            by_setting[record["setting"]].append(record)
    points = []
    for setting, records in by_setting.items():
        point = {"setting": setting, "images": len(records)}
        for key in ("bpp", "bpsp", "encode_s", "decode_s"):
            point[key] = fmean(r[key] for r in records)
        for key in QUALITY_KEYS:
            point[key], point[f"{key}_n"] = _mean(r[key] for r in records)
        point["max_abs_error"] = max(r["max_abs_error"] for r in records)
        points.append(point)
    return sorted(points, key=lambda p: p["bpp"])


def upper_envelope(points: list[dict], key: str) -> list[dict]:
    """The points no other point beats at a lower or equal rate (sorted by bpp).

    A codec whose settings interleave (cdcodec's quality levels × stage counts)
    offers several points near one rate; a user would take the best, so BD-rates
    and fixed-rate readings use this envelope. For a codec whose quality rises
    with its rate it is the curve itself.
    """
    envelope: list[dict] = []
    for point in sorted((p for p in points if p[key] is not None), key=lambda p: p["bpp"]):
        if envelope and point["bpp"] == envelope[-1]["bpp"] and point[key] > envelope[-1][key]:
            envelope.pop()
        if not envelope or point[key] > envelope[-1][key]:
            envelope.append(point)
    return envelope


def quality_axis(points: list[dict], key: str) -> list[float | None]:
    """The values BD-rates and plots use: PSNR in dB, SSIM and MS-SSIM converted to dB."""
    if key == "psnr":
        return [p["psnr"] for p in points]
    return [to_db(p[key]) for p in points]


def quality_at_rate(points: list[dict], key: str, rate: float) -> float | None:
    """The curve's `key` at `rate` bpp, linear in log rate between neighbouring points.

    None outside the curve's rate range: a table should not show extrapolations.
    """
    pairs = sorted((p["bpp"], p[key]) for p in points if p[key] is not None and p["bpp"] > 0)
    if len(pairs) < 2 or not pairs[0][0] <= rate <= pairs[-1][0]:
        return None
    rates = np.log([r for r, _ in pairs])
    values = np.array([v for _, v in pairs])
    value = float(np.interp(math.log(rate), rates, values))
    return value
