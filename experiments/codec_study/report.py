"""Tables of the codec study: BD-rates and fixed-rate readings from averaged curves."""

from __future__ import annotations

from collections.abc import Sequence

from ...bench.bdrate import bd_rate
from ...bench.curves import quality_at_rate, quality_axis, upper_envelope

#: Fixed rate (bpp) of the training-time comparison: inside every stage-1 curve.
CURVE_RATE = 0.25
#: Rates of the cascade ablation: where stage 1 alone, the cascade's stage 2 and its stage 3 operate.
ABLATION_RATES = (0.25, 0.5, 0.75, 1.0, 1.5)
METRICS = ("psnr", "ms_ssim")


def envelope_bd(reference: list[dict], test: list[dict], key: str) -> float | None:
    """BD-rate (%) of `test` against `reference` on their upper envelopes in `key` (dB scale)."""
    ref, tst = upper_envelope(reference, key), upper_envelope(test, key)
    return bd_rate([p["bpp"] for p in ref], quality_axis(ref, key), [p["bpp"] for p in tst], quality_axis(tst, key))


def reading(points: list[dict], key: str, rate: float) -> float | None:
    return quality_at_rate(upper_envelope(points, key), key, rate)


def _fmt(value: float | None, digits: int = 2, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def training_table(rows: list[dict], curves: dict[str, list[dict]], reference: str) -> str:
    """Markdown: one line per run, read at CURVE_RATE and as BD-rate against `reference`."""
    lines = [
        f"| run | steps | train min | PSNR @ {CURVE_RATE} bpp | MS-SSIM @ {CURVE_RATE} bpp | BD-rate PSNR vs {reference} | BD-rate MS-SSIM vs {reference} |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        points = curves[row["name"]]
        minutes = None if row.get("train_seconds") is None else row["train_seconds"] / 60
        lines.append(
            f"| {row['name']} ({row['note']}) | {row['steps']} | {_fmt(minutes, 1)} | {_fmt(reading(points, 'psnr', CURVE_RATE))}"
            f" | {_fmt(reading(points, 'ms_ssim', CURVE_RATE), 4)}"
            f" | {_fmt(envelope_bd(curves[reference], points, 'psnr'), 1, True)} % | {_fmt(envelope_bd(curves[reference], points, 'ms_ssim'), 1, True)} % |"
        )
    return "\n".join(lines)


def ablation_table(curves: dict[str, list[dict]], references: Sequence[str]) -> str:
    """Markdown: PSNR / MS-SSIM of each ablation curve at ABLATION_RATES, and BD-rates against each reference.

    A reference column is headed by its label's first word, e.g. "(a)"."""
    labels = [ref.split()[0] for ref in references]
    bd_heads = [f"BD-rate {m} vs {label}" for label in labels for m in ("PSNR", "MS-SSIM")]
    header = "| variant | " + " | ".join(f"{r} bpp" for r in ABLATION_RATES) + " | " + " | ".join(bd_heads) + " | rate range (bpp) |"
    lines = [header, "|---|" + "---:|" * (len(ABLATION_RATES) + len(bd_heads) + 1)]
    for name, points in curves.items():
        cells = [
            f"{_fmt(reading(points, 'psnr', r))} dB / {_fmt(reading(points, 'ms_ssim', r), 4)}" for r in ABLATION_RATES
        ]
        bd = [f"{_fmt(envelope_bd(curves[ref], points, k), 1, True)} %" for ref in references for k in METRICS]
        span = f"{min(p['bpp'] for p in points):.3f}–{max(p['bpp'] for p in points):.3f}"
        lines.append(f"| {name} | " + " | ".join(cells) + " | " + " | ".join(bd) + f" | {span} |")
    return "\n".join(lines)
