"""Every codec the benchmark knows, by name: one list for the command and its worker processes.

A worker process (`run.run` with jobs > 1) receives codec names, not codec
objects (a baseline's encoder is a closure, which does not pickle), and looks
them up here.
"""

from __future__ import annotations

from .cdcodec_source import CDCODEC, CDCODEC_LOSSLESS, CDCODEC_MSSSIM, CDCODEC_NEAR, CDCODEC_PSNR, CDCODEC_PSNR_EFFORT
from .codecs import BASELINES

ALL_SOURCES = (CDCODEC, CDCODEC_MSSSIM, CDCODEC_PSNR, CDCODEC_PSNR_EFFORT, CDCODEC_LOSSLESS, CDCODEC_NEAR, *BASELINES)

#: What a plain `cdcodec bench` runs: every source but the slowest encoder setting,
#: whose curve lies within a few tenths of a per cent of `cdcodec-psnr`'s at more than
#: twice its encode time (results/bench/README.md, "The encoder's effort doubled").
#: `--codecs all` or its name adds it.
DEFAULT_SOURCES = tuple(source for source in ALL_SOURCES if source is not CDCODEC_PSNR_EFFORT)


def by_name(names) -> list:
    """The sources called `names`, in that order; ValueError naming the unknown ones."""
    known = {source.name: source for source in ALL_SOURCES}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown codec(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return [known[name] for name in names]
