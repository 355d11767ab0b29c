"""Rate and quality of a model's stage prefixes on a folder of images, from real file bytes.

Every point is a real encode: the rate is `len(file)`, the quality is measured
on what `decode` returns (optionally passed through a decoder-only stage).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from ...bench.metrics import measure
from ...bench.points import timed
from ...codec.pipeline import decode, encode, get_model

Postprocess = Callable[[np.ndarray], np.ndarray]


def measure_model(name: str, model, images: Iterable, stages: int, qualities: Iterable[int], post: Postprocess | None = None) -> list[dict]:
    """Per-image records for `stages` stages at each quality level, labelled `name`."""
    loaded = get_model(model)
    records = []
    for image in images:
        for quality in qualities:
            data, encode_s = timed(lambda: encode(image.pixels, stages=stages, model=loaded, quality=quality))
            decoded, decode_s = timed(lambda: decode(data, model=loaded) if post is None else post(decode(data, model=loaded)))
            record = {"codec": name, "setting": f"q{quality} stages={stages}", "image": image.name}
            record.update(measure(image.pixels, decoded, len(data)), encode_s=encode_s, decode_s=decode_s)
            records.append(record)
    return records

