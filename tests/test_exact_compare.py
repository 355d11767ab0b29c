"""results/exact/compare.py: the exact table's per-image tallies, read from a results file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "results" / "exact" / "compare.py"
ONE_STAGE = "cdcodec {} (base 1, quality 0)"
THREE_STAGES = "cdcodec {} (base 3)"
BASELINES = {"lossless": ("WebP lossless", "JPEG XL lossless e5", "JPEG XL lossless e7"),
             "D=1": ("JPEG-LS NEAR=1",), "D=2": ("JPEG-LS NEAR=2",)}


def _results(tmp_path: Path) -> Path:
    """Three images. Every baseline is 2.0 bpsp; cdcodec's one-stage files are 1.5, 2.5 and 1.8 bpsp
    (−25%, +25%, −10%), and its three-stage files 10%, 20% and 30% above the one-stage ones."""
    ours = {"a.png": 1.5, "b.png": 2.5, "c.png": 1.8}
    growth = {"a.png": 1.1, "b.png": 1.2, "c.png": 1.3}
    rows = []
    for image, bpsp in ours.items():
        row: dict = {"image": image}
        for mode, baselines in BASELINES.items():
            row[ONE_STAGE.format(mode)] = {"bpsp": bpsp}
            row[THREE_STAGES.format(mode)] = {"bpsp": bpsp * growth[image]}
            row.update({name: {"bpsp": 2.0} for name in baselines})
        rows.append(row)
    names = [name for name in rows[0] if name != "image"]
    means = {name: sum(row[name]["bpsp"] for row in rows) / len(rows) for name in names}
    path = tmp_path / "kodak.json"
    path.write_text(json.dumps({"mean_bpsp": means, "per_image": rows}))
    return path


def test_prints_per_image_tallies_and_three_stage_growth(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), str(_results(tmp_path))],
                         capture_output=True, text=True, timeout=120, check=True).stdout.splitlines()
    # Mean 1.9333 against 2.0: −3.33%; smaller on a and c; the extremes are a (−25%) and b (+25%).
    assert out[0] == ("cdcodec lossless (base 1, quality 0) vs WebP lossless: mean -3.33%, "
                      "smaller on 2 of 3, from -25.0% (a.png) to +25.0% (b.png)")
    assert out[3].startswith("cdcodec D=1 (base 1, quality 0) vs JPEG-LS NEAR=1: mean -3.33%, smaller on 2 of 3")
    assert len(out) == 8
    # Three-stage means: (1.65 + 3.0 + 2.34) / 3 = 2.33 over 1.9333, +20.5%; per image +10% to +30%.
    assert out[5] == "three stages over one at quality 0, lossless: mean +20.5%, per image +10.0% to +30.0%"
