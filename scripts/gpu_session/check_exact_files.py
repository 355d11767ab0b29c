"""Decode the files `make_exact_files.py` wrote, with one and with all torch threads; compare pixel hashes.

Writes a JSON report (machine, library versions, per file the hashes by
thread count) and exits non-zero unless every decode matches the hash
recorded on the machine that encoded it.

Usage: python scripts/gpu_session/check_exact_files.py gpu-carry/exact REPORT.json
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

from cdcodec.codec.pipeline import decode


def main(folder: Path, report_path: Path) -> bool:
    expected = json.loads((folder / "expected.json").read_text())
    report = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "torch": torch.__version__, "numpy": np.__version__,
              "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None, "files": {}}
    for name, want in expected.items():
        data = (folder / name).read_bytes()
        hashes = {}
        for threads in sorted({1, os.cpu_count() or 1}):
            torch.set_num_threads(threads)
            hashes[threads] = hashlib.sha256(decode(data).tobytes()).hexdigest()
        report["files"][name] = {"expected": want["pixels_sha256"], "by_threads": hashes,
                                 "identical": all(h == want["pixels_sha256"] for h in hashes.values())}
    report["all_identical"] = all(f["identical"] for f in report["files"].values())
    report_path.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return report["all_identical"]


if __name__ == "__main__":
    sys.exit(0 if main(Path(sys.argv[1]), Path(sys.argv[2])) else 1)
