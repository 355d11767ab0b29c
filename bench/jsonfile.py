"""Results files as JSON, plain or gzip-compressed (a name ending in `.gz`).

Every probe and bench run leaves a results file of a few hundred kilobytes,
and every shipped file travels with each call to a lent GPU machine (64 MiB
in all), so the project keeps its older results compressed: the measurements
of one Kodak run shrink about five times. Readers take either form, so a
command written for `kodak.json` works on `kodak.json.gz` unchanged.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path


def is_compressed(path: Path) -> bool:
    """Whether `path` names a gzip-compressed JSON file."""
    return path.suffix == ".gz"


def read_json(path: str | Path):
    """The JSON document in `path`, decompressed first when its name ends in `.gz`."""
    path = Path(path)
    data = path.read_bytes()
    if is_compressed(path):
        data = gzip.decompress(data)
    return json.loads(data)


def write_json(path: str | Path, document) -> None:
    """Write strict JSON (no NaN or infinity) atomically, so a checkpoint is never half written.

    A name ending in `.gz` is written gzip-compressed, with no time stamp in the
    header, so the same document always gives the same bytes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(document, indent=1, allow_nan=False) + "\n").encode()
    if is_compressed(path):
        data = gzip.compress(data, compresslevel=9, mtime=0)
    temporary = path.with_name(path.name + ".partial")
    temporary.write_bytes(data)
    temporary.replace(path)
