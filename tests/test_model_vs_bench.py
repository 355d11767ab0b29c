"""scripts/model_vs_bench.py refuses to measure a model whose search it cannot set up as trained."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "model_vs_bench.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


def test_an_unknown_models_search_share_must_be_given(tiny_weights, tmp_path):
    missing = tmp_path / "no-such-results.json"  # never read: the check comes first
    result = run("--model", str(tiny_weights), "--results", str(missing))
    assert result.returncode != 0
    assert "does not know model 'test-tiny'" in result.stderr and "--search-ms-ssim-share" in result.stderr
    assert "Traceback" not in result.stderr

    for extra in (["--tune", "psnr", "--search-ms-ssim-share", "0.3"], ["--search-ms-ssim-share", "1.5"]):
        result = run("--model", str(tiny_weights), "--results", str(missing), *extra)
        assert result.returncode != 0 and "Traceback" not in result.stderr and "--search-ms-ssim-share" in result.stderr

    # With the share, or without a search, the run goes on to read the results file.
    for extra in (["--search-ms-ssim-share", "0.3"], ["--tune", "psnr"], ["--effort", "0"]):
        result = run("--model", str(tiny_weights), "--results", str(missing), *extra)
        assert result.returncode != 0 and "no-such-results.json" in result.stderr, extra
