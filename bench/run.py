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
from pathlib import Path
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
    reused: dict | None = None,
    image_done: Callable[[list[dict], list[dict]], None] | None = None,
    jobs: int = 1,
) -> tuple[list[dict], list[dict]]:
    """Measure every (image, codec, setting); return (measurements, errors).

    `step` is called once per finished (image, codec) pair with a short description,
    which is how the command drives its progress bar. `reused` maps (image, codec)
    to measurements taken earlier (see `reusable`); those pairs are not re-encoded.
    `image_done` gets the measurements and errors so far after each image, so that
    the command can save a checkpoint a later run can ``--reuse``. With `jobs` > 1
    the images are measured that many at a time in worker processes (started
    fresh, so no thread pool is forked); results come back in image order, the
    same records a single process makes.
    """
    measurements: list[dict] = []
    errors: list[dict] = []
    reused = reused or {}
    pending = [[source for source in sources if (image.name, source.name) not in reused] for image in images]
    with _Workers(jobs) as workers:
        results = workers.map(_measure_image, images, pending)
        for image, todo, result in zip(images, pending, results):
            fresh = dict(zip((source.name for source in todo), result))
            for source in sources:
                key = (image.name, source.name)
                if key in reused:
                    measurements.extend(reused[key])
                    what = f"{image.name}/{source.name} (reused)"
                else:
                    found, failed = fresh[source.name]
                    measurements.extend(found)
                    errors.extend(failed)
                    what = f"{image.name}/{source.name}"
                if step is not None:
                    step(what)
            if image_done is not None:
                image_done(measurements, errors)
    return measurements, errors


class _Workers:
    """`map` in this process (jobs = 1) or in a pool of fresh processes that receive
    codec names, not codec objects (`registry.by_name`)."""

    def __init__(self, jobs: int):
        self.jobs = jobs
        self.pool = None

    def __enter__(self):
        if self.jobs > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            from ..codec.allocator import keep_freed_memory

            self.pool = ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("spawn"), initializer=keep_freed_memory)
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def map(self, function, images, pending):
        if self.pool is None:
            return (function(image, sources) for image, sources in zip(images, pending))
        names = [[source.name for source in sources] for sources in pending]
        return self.pool.map(_measure_named, images, names)


def _measure_named(image: TestImage, names: list[str]) -> list[tuple[list[dict], list[dict]]]:
    from .registry import by_name

    return _measure_image(image, by_name(names))


def _measure_image(image: TestImage, sources: Sequence) -> list[tuple[list[dict], list[dict]]]:
    """(measurements, errors) of every source on one image, in the order of `sources`."""
    return [measure_source(image, source) for source in sources]


def measure_source(image: TestImage, source) -> tuple[list[dict], list[dict]]:
    """(measurements, errors) of one source's every point on one image, as a results file records them."""
    measurements: list[dict] = []
    errors: list[dict] = []
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
    return measurements, errors


REUSE_PACKAGES = ("pillow", "imagecodecs", "scikit-image", "pytorch-msssim")


def reusable(previous: dict, images: Sequence[TestImage], sources: Sequence) -> dict:
    """Measurements of an earlier results document that this run can take over unchanged.

    A baseline sweep over Kodak takes the better part of an hour on a small machine,
    while cdcodec changes daily; this lets a run re-measure only cdcodec. A pair
    (image, codec) is reused only if the image has the same name and size, the codec
    the same settings and parameters, the encoder and metric libraries the same versions,
    and the earlier run had no error for it. cdcodec's settings include the fingerprint of
    its code, its model's weights and numeric libraries (`cdcodec_source.build_fingerprint`), so its
    points are reused only from a run of the same build; without a fingerprint (a
    stand-in cdcodec, or a file from before it was recorded) never. Wall times are the
    earlier run's.
    """
    if previous.get("schema") != SCHEMA:
        return {}
    old_packages = previous.get("environment", {}).get("packages", {})
    new_packages = environment()["packages"]
    if any(old_packages.get(name) != new_packages.get(name) for name in REUSE_PACKAGES):
        return {}
    old_images = {i["name"]: (i["width"], i["height"]) for i in previous.get("images", [])}
    old_codecs = {c["name"]: c for c in previous.get("codecs", [])}
    failed = {(e["image"], e["codec"]) for e in previous.get("errors", [])}
    index: dict = {}
    for record in previous.get("measurements", []):
        index.setdefault((record["image"], record["codec"]), []).append(record)
    same = [source for source in sources if old_codecs.get(source.name) == describe_codec(source) and not _unbuilt(source)]
    taken = {}
    for image in images:
        size = (image.pixels.shape[1], image.pixels.shape[0])
        for source in same:
            key = (image.name, source.name)
            if old_images.get(image.name) != size or key in failed or key not in index:
                continue
            records = index[key]
            # cdcodec lists no settings up front: its points are every quality level × stage count
            # of the model, which the build fingerprint already pins.
            fixed = set(getattr(source, "settings", ()))
            if not fixed or {r["setting"] for r in records} == fixed:
                taken[key] = records
    return taken


def _unbuilt(source) -> bool:
    """A cdcodec source whose build is unknown: its points can never be matched to an earlier run's."""
    params = source.params
    return params.get("library") == "cdcodec" and not params.get("build")


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _cpu() -> dict:
    """The CPU's name and family, and the vector instructions torch's kernels use: float
    results, and so the encoder's search and the bytes it writes, can differ between
    CPUs (a point measured on one machine may not be reproduced to the byte on another)."""
    described = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "cpu family", "model") and key not in described:
                described[key] = value.strip()
    except OSError:
        pass
    try:
        import torch

        described["torch_capability"] = torch.backends.cpu.get_cpu_capability()
    except (ImportError, AttributeError):
        pass
    return described


def environment() -> dict:
    """Where the numbers came from: timings and encoder output depend on these."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu": _cpu(),
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


def results_document(images, sources, skipped, measurements, errors, summary, options: dict,
                     complete: bool = True) -> dict:
    """The JSON document: everything measured plus how, where and with what.

    `complete` is False in the checkpoints written while a run is going on; their
    ``images`` list only the images finished so far.
    """
    return {
        "schema": SCHEMA,
        "complete": complete,
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
