"""cdcodec as a benchmarked codec: every operating point the format offers.

A progressive file holds all its stages; the k-stage prefix is itself a valid file.
So the benchmark encodes once and measures each prefix k = 1..K, with the rate taken
from the exact prefix bytes (`cdcodec.bitstream.truncate`) and the reconstruction
from decoding those bytes, never from the full file. When the codec gains quality
settings, lossless or near-lossless modes, they belong in `cdcodec_points` so the
runner needs no change.
"""

from __future__ import annotations

import importlib

import numpy as np

from .codecs import LOSSY
from .points import Encoded, timed


def stage_setting(stages: int) -> str:
    """The setting label of the k-stage prefix (a string, so it can later carry a quality too)."""
    return f"stages={stages}"


def cdcodec_points(image: np.ndarray):
    """Encode `image` once with all stages, then yield each stage prefix as an operating point.

    Every point carries the full encode's wall time, since one encode makes them all.
    """
    cdcodec = importlib.import_module("cdcodec")
    bitstream = importlib.import_module("cdcodec.bitstream")
    data, encode_s = timed(cdcodec.encode, image)
    total = bitstream.unpack(data).stages_present
    for stages in range(1, total + 1):
        prefix = bitstream.truncate(data, stages)
        decoded, decode_s = timed(lambda: cdcodec.decode(prefix, stages=stages))
        yield Encoded(stage_setting(stages), prefix, np.asarray(decoded), encode_s, decode_s)


def warm_up() -> None:
    """Encode and decode a small image once, untimed.

    cdcodec loads its weights on first use; without this the first image's encode
    time would include reading the model from disk.
    """
    cdcodec = importlib.import_module("cdcodec")
    rng = np.random.default_rng(0)
    cdcodec.decode(cdcodec.encode(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)))


class CdcodecSource:
    """Duck-types `codecs.Codec` for the runner: name, label, kind, availability, points."""

    name = "cdcodec"
    label = "cdcodec"
    kind = LOSSY
    setting_name = "stages"
    params = {"library": "cdcodec", "points": "encode once, decode each stage prefix k=1..K"}

    def unavailable(self) -> str | None:
        """None when cdcodec can encode here; checks by encoding a small image (which also loads the model)."""
        try:
            cdcodec = importlib.import_module("cdcodec")
        except ImportError as error:  # pragma: no cover - the bench lives inside cdcodec
            return f"cdcodec not importable ({error})"
        missing = []
        for name in ("encode", "decode"):
            try:
                getattr(cdcodec, name)
            except (AttributeError, ImportError):  # cdcodec resolves these lazily, so a missing module shows here
                missing.append(f"cdcodec.{name}")
        if missing:
            return f"{' and '.join(missing)} not available yet"
        if not self._warm:
            try:
                warm_up()
            except Exception as error:  # e.g. no trained weights shipped yet: skip, do not fail every image
                return f"cannot encode yet: {type(error).__name__}: {error}"
            self._warm = True
        return None

    def __init__(self) -> None:
        self._warm = False

    def points(self, image: np.ndarray):
        if not self._warm:
            warm_up()
            self._warm = True
        return cdcodec_points(image)


CDCODEC = CdcodecSource()
