"""Rate-distortion plots of the average curves: one PNG per quality measure.

``--plot rd.png`` writes ``rd-psnr.png``, ``rd-ssim.png`` and ``rd-msssim.png``
beside each other, because one figure per measure stays readable where a grid of
three would not. SSIM and MS-SSIM are drawn in dB, -10 log10(1 - x), which is the
axis BD-rates use and separates codecs near 1. Near-lossless points are drawn as
markers; lossless codecs have no distortion and appear only in the table. A
codec whose settings interleave (cdcodec) is drawn as the line of its upper
envelope with its other operating points as open circles.
"""

from __future__ import annotations

from pathlib import Path

from .codecs import LOSSY, NEAR_LOSSLESS
from .curves import quality_axis, upper_envelope

#: cdcodec's curves in black, told apart by line style, over the baselines' colours.
CDCODEC_STYLES = {
    "cdcodec": dict(linewidth=2.5, color="black", markersize=5),
    "cdcodec-msssim": dict(linewidth=2.5, color="black", linestyle="--", markersize=5),
    "cdcodec-psnr": dict(linewidth=2.5, color="black", linestyle=":", markersize=5),
    "cdcodec-psnr-effort8": dict(linewidth=1.5, color="black", linestyle="-.", markersize=4),
}

AXES = {
    "psnr": ("psnr", "PSNR (dB, RGB)"),
    "ssim": ("ssim", "SSIM (dB, −10·log10(1−SSIM))"),
    "msssim": ("ms_ssim", "MS-SSIM (dB, −10·log10(1−MS-SSIM))"),
}


def plot_paths(target: Path) -> dict[str, Path]:
    """rd.png -> {"psnr": rd-psnr.png, "ssim": rd-ssim.png, "msssim": rd-msssim.png}."""
    target = Path(target)
    suffix = target.suffix or ".png"
    return {tag: target.with_name(f"{target.stem}-{tag}{suffix}") for tag in AXES}


def write_plots(document: dict, target: Path, max_bpp: float = 2.5) -> list[Path]:
    """Draw every lossy and near-lossless average curve; return the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = document["summary"]["average_curves"]
    codecs = [c for c in document["codecs"] if c["kind"] in (LOSSY, NEAR_LOSSLESS) and curves.get(c["name"])]
    title = f"{len(document['images'])} images, mean per setting"
    written = []
    for tag, path in plot_paths(target).items():
        key, ylabel = AXES[tag]
        figure, axes = plt.subplots(figsize=(7, 5), dpi=120)
        for codec in codecs:
            every = [p for p in curves[codec["name"]] if p["bpp"] <= max_bpp * 1.3]
            points = upper_envelope(every, key) if codec["kind"] == LOSSY else every
            if len(points) < len(every):  # settings that interleave: show every point, join the envelope
                dropped = [p for p in every if p not in points and p[key] is not None]
                axes.plot([p["bpp"] for p in dropped], quality_axis(dropped, key), linestyle="none",
                          marker="o", markersize=4, markerfacecolor="none", color="black")
            ys = quality_axis(points, key)
            xs = [p["bpp"] for p, y in zip(points, ys) if y is not None]
            ys = [y for y in ys if y is not None]
            if not xs:
                continue
            style = dict(marker="o", markersize=3, linewidth=1.5)
            if codec["kind"] == NEAR_LOSSLESS:
                style = dict(marker="s", markersize=5, linestyle="none")
            style.update(CDCODEC_STYLES.get(codec["name"], {}))
            axes.plot(xs, ys, label=codec["label"], **style)
        axes.set_xlim(0, max_bpp)
        axes.set_xlabel("bits per pixel")
        axes.set_ylabel(ylabel)
        axes.set_title(title)
        axes.grid(True, alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8, loc="lower right")
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path)
        plt.close(figure)
        written.append(path)
    return written
