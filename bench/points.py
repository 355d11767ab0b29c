"""An operating point: what one codec produced for one image at one setting.

Kept apart from the codecs so that baseline adapters and cdcodec (which encodes
once and then decodes every stage prefix) hand the runner the same record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, TypeVar

import numpy as np

T = TypeVar("T")


@dataclass(frozen=True)
class Encoded:
    """The real bytes of one operating point and their decoded image.

    `encode_s` is the wall time of the encoder call that produced `data`; for a
    codec that makes several points from one encode (cdcodec's stage prefixes)
    it is that one shared encode's time.
    """

    setting: int | float | str
    data: bytes
    decoded: np.ndarray
    encode_s: float
    decode_s: float


def timed(function: Callable[..., T], *args) -> tuple[T, float]:
    """Call `function` and return its result with the wall time it took, in seconds."""
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start
