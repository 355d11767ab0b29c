"""Run every codec on every image and record one measurement per operating point.

The runner only loops and records; codecs know how to make their points
(`codecs.Codec.points`, `cdcodec_source.cdcodec_points`) and `metrics` knows how
to score them. A codec that raises on one image is recorded in ``errors`` and the
run goes on, so one broken encoder never loses the rest of a long benchmark.
"""

from __future__ import annotations

import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from typing import Callable, Iterable, Sequence

from .codecs import LOSSLESS, NEAR_LOSSLESS
from .images import TestImage
from .metrics import measure

SCHEMA = "cdcodec-bench/1"


def split_available(sources: Iterable) -> tuple[list, list[dict]]:
    """Separate runnable codecs from missing ones; the latter as {"codec", "label", "reason"}."""
    runnable, skipped = [], []
    for source in sources:
        reason = source.unavailable()
        if reason is None:
            runnable.append(source)
        else:
            skipped.append({"codec": source.name, "label": source.label, "reason": reason})
    return runnable, skipped


def check_exactness(source, setting, max_abs_error: int) -> str | None:
    """Lossless must be exact and near-lossless within its NEAR bound; say so when not."""
    if source.kind == LOSSLESS and max_abs_error != 0:
        return f"lossless codec reconstructed with max error {max_abs_error}"
    if source.kind == NEAR_LOSSLESS and isinstance(setting, (int, float)) and max_abs_error > setting:
        return f"near-lossless codec exceeded its bound: max error {max_abs_error} > {setting}"
    return None


def run(
    images: Sequence[TestImage],
    sources: Sequence,
    step: Callable[[str], None] | None = None,
) -> tuple[list[dict], list[dict]]:
    """Measure every (image, codec, setting); return (measurements, errors).

    `step` is called once per finished (image, codec) pair with a short description,
    which is how the command drives its progress bar.
    """
    measurements: list[dict] = []
    errors: list[dict] = []
    for image in images:
        for source in sources:
            try:
                for point in source.points(image.pixels):
                    record = {"image": image.name, "codec": source.name, "setting": point.setting}
                    record.update(measure(image.pixels, point.decoded, len(point.data)))
                    record["encode_s"] = point.encode_s
                    record["decode_s"] = point.decode_s
                    measurements.append(record)
                    problem = check_exactness(source, point.setting, record["max_abs_error"])
                    if problem:
                        errors.append({"image": image.name, "codec": source.name, "setting": point.setting, "error": problem})
            except Exception as error:  # one failing codec must not end the whole run
                errors.append({"image": image.name, "codec": source.name, "setting": None,
                               "error": f"{type(error).__name__}: {error}"})
            if step is not None:
                step(f"{image.name}/{source.name}")
    return measurements, errors


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict:
    """Where the numbers came from: timings and encoder output depend on these."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "packages": {
            name: _version(name)
            for name in ("cdcodec", "numpy", "pillow", "imagecodecs", "scikit-image", "pytorch-msssim", "torch", "scipy")
        },
    }


def describe_codec(source) -> dict:
    return {
        "name": source.name,
        "label": source.label,
        "kind": source.kind,
        "setting_name": source.setting_name,
        "settings": list(getattr(source, "settings", ())) or None,
        "params": dict(source.params),
    }


def describe_image(image: TestImage) -> dict:
    height, width, channels = image.pixels.shape
    return {"name": image.name, "source": image.source, "width": width, "height": height, "channels": channels}


def results_document(images, sources, skipped, measurements, errors, summary, options: dict) -> dict:
    """The JSON document: everything measured plus how, where and with what."""
    return {
        "schema": SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "options": options,
        "environment": environment(),
        "images": [describe_image(image) for image in images],
        "codecs": [describe_codec(source) for source in sources],
        "skipped": skipped,
        "errors": errors,
        "measurements": measurements,
        "summary": summary,
    }
