"""Summarise measurements: average curves, BD-rates, lossless rates, and the terminal table.

`summarise` builds the JSON ``summary`` block; `format_summary` renders it as
Markdown tables, so the same text reads well on a terminal and pastes into a README.
"""

from __future__ import annotations

from statistics import fmean

from .bdrate import bd_rate, overlap
from .codecs import LOSSLESS, LOSSY, NEAR_LOSSLESS
from .curves import QUALITY_KEYS, average_curve, quality_at_rate, quality_axis, upper_envelope

FIXED_BPP = (0.25, 0.5, 1.0, 2.0)
METRIC_LABELS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "ms_ssim": "MS-SSIM"}


def summarise(measurements: list[dict], codecs: list[dict], reference: str, method: str = "pchip") -> dict:
    """Everything the table and plots show, computed from `measurements` alone.

    `codecs` are the JSON codec descriptions (name, label, kind) of the codecs that ran.
    """
    curves = {c["name"]: average_curve(measurements, c["name"]) for c in codecs}
    kinds = {c["name"]: c["kind"] for c in codecs}
    lossy = [name for name in curves if kinds[name] == LOSSY and curves[name]]

    at_bpp = {
        name: {
            key: {str(rate): quality_at_rate(upper_envelope(curves[name], key), key, rate) for rate in FIXED_BPP}
            for key in QUALITY_KEYS
        }
        for name in lossy
    }

    bd: dict = {}
    if reference in curves and curves[reference]:
        ref_points = curves[reference]
        for name in lossy:
            bd[name] = {}
            for key in QUALITY_KEYS:
                ref_rates, ref_q, test_rates, test_q = envelope_axes(ref_points, curves[name], key)
                bd[name][key] = bd_rate(ref_rates, ref_q, test_rates, test_q, method)
                bd[name][f"{key}_overlap_db"] = overlap(ref_q, test_q)

    lossless = {
        name: [
            {
                "setting": p["setting"],
                "bpsp": p["bpsp"],
                "bpp": p["bpp"],
                "psnr": p["psnr"],
                "max_abs_error": p["max_abs_error"],
                "encode_s": p["encode_s"],
                "decode_s": p["decode_s"],
            }
            for p in points
        ]
        for name, points in curves.items()
        if kinds[name] in (LOSSLESS, NEAR_LOSSLESS)
    }

    timing = {
        name: {
            "encode_s": fmean(p["encode_s"] for p in points),
            "decode_s": fmean(p["decode_s"] for p in points),
        }
        for name, points in curves.items()
        if points
    }
    return {
        "averaging": "per setting: arithmetic mean over images of bpp, PSNR (dB), SSIM and MS-SSIM",
        "reference": reference,
        "bd_rate_method": method,
        "bd_rate_quality_axes": {"psnr": "dB", "ssim": "-10*log10(1-SSIM)", "ms_ssim": "-10*log10(1-MS-SSIM)"},
        "fixed_bpp_interpolation": "linear in log(bpp) on the average curve's upper envelope; null outside its range",
        "bd_rate_curves": "each codec's average curve reduced to its upper envelope (points no lower-rate point beats)",
        "average_curves": curves,
        "at_bpp": at_bpp,
        "bd_rate_percent": bd,
        "lossless": lossless,
        "mean_time_s": timing,
    }


def envelope_axes(ref_points: list[dict], test_points: list[dict], key: str) -> tuple[list, list, list, list]:
    """(reference rates, reference qualities, test rates, test qualities) on both upper
    envelopes, qualities as BD-rates compare them (SSIM and MS-SSIM in dB)."""
    ref_env, test_env = upper_envelope(ref_points, key), upper_envelope(test_points, key)
    return ([p["bpp"] for p in ref_env], quality_axis(ref_env, key),
            [p["bpp"] for p in test_env], quality_axis(test_env, key))


def _fmt(value, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows]


def format_summary(document: dict) -> str:
    """The terminal summary: Markdown tables of the average curves, BD-rates and lossless rates."""
    summary = document["summary"]
    labels = {c["name"]: c["label"] for c in document["codecs"]}
    out: list[str] = [f"Benchmark of {len(document['images'])} images; curves averaged per setting over images."]
    for skip in document["skipped"]:
        out.append(f"skipped: {skip['label']} ({skip['reason']})")
    failed = sorted({e["codec"] for e in document["errors"]})
    for name in failed:
        count = sum(1 for e in document["errors"] if e["codec"] == name)
        out.append(f"errors: {labels.get(name, name)} ({count}; see 'errors' in the JSON)")

    for key, digits in (("psnr", 2), ("ssim", 4), ("ms_ssim", 4)):
        if not summary["at_bpp"]:
            break
        out += ["", f"{METRIC_LABELS[key]} of the average curve at fixed bpp"]
        header = ["codec"] + [f"{rate:g} bpp" for rate in FIXED_BPP]
        rows = [[labels[name]] + [_fmt(values[key][str(rate)], digits) for rate in FIXED_BPP]
                for name, values in summary["at_bpp"].items()]
        out += _table(header, rows)

    if summary["bd_rate_percent"]:
        reference = labels.get(summary["reference"], summary["reference"])
        out += ["", f"BD-rate (%) against {reference} ({summary['bd_rate_method']}; SSIM and MS-SSIM in dB; negative = fewer bits)"]
        rows = [[labels[name]] + [_fmt(values[key], 1) for key in QUALITY_KEYS]
                for name, values in summary["bd_rate_percent"].items()]
        out += _table(["codec", "PSNR", "SSIM", "MS-SSIM"], rows)
    elif summary["at_bpp"]:
        out += ["", f"BD-rate: reference {summary['reference']!r} did not run; no BD-rates."]

    if summary["lossless"]:
        out += ["", "Lossless and near-lossless (mean over images)"]
        rows = []
        for name, points in summary["lossless"].items():
            for p in points:
                setting = "" if p["setting"] in ("lossless", 0) else f" (D={p['setting']})"
                rows.append([labels[name] + setting, _fmt(p["bpsp"], 3), _fmt(p["bpp"], 3), _fmt(p["psnr"], 2),
                             str(p["max_abs_error"]), _fmt(p["encode_s"] * 1e3, 0), _fmt(p["decode_s"] * 1e3, 0)])
        out += _table(["codec", "bpsp", "bpp", "PSNR", "max err", "encode ms", "decode ms"], rows)

    lossy_times = {name: t for name, t in summary["mean_time_s"].items() if name in summary["at_bpp"]}
    if lossy_times:
        out += ["", "Mean wall time per lossy operating point (one thread where the library allows)"]
        rows = [[labels[name], _fmt(t["encode_s"] * 1e3, 0), _fmt(t["decode_s"] * 1e3, 0)] for name, t in lossy_times.items()]
        out += _table(["codec", "encode ms", "decode ms"], rows)
    return "\n".join(out)
