"""results/bench/rereference.py: per-image tallies and curve reaches read from a results file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "results" / "bench" / "rereference.py"


def _record(image: str, codec: str, setting: int, bpp: float) -> dict:
    """One measurement whose quality depends on the setting alone, so rate factors become BD-rates."""
    psnr = 25.0 + setting
    return {
        "image": image, "codec": codec, "setting": setting, "bytes": 1000, "bpp": bpp, "bpsp": bpp / 3,
        "psnr": psnr, "ssim": 1 - 10 ** (-psnr / 20), "ms_ssim": 1 - 10 ** (-psnr / 15),
        "max_abs_error": 10, "encode_s": 0.1, "decode_s": 0.1,
    }


def _results(tmp_path: Path) -> Path:
    """Codec 'b' needs 20% fewer bits than 'a' on image one and 25% more on image two, at every quality."""
    factors = {"one": 0.8, "two": 1.25}
    measurements = []
    for image, factor in factors.items():
        for setting in range(8):
            rate = 0.1 * 2 ** (setting / 2)
            measurements += [_record(image, "a", setting, rate), _record(image, "b", setting, rate * factor)]
    codecs = [{"name": name, "label": name, "kind": "lossy", "params": {}} for name in ("a", "b")]
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"options": {"bd_method": "pchip"}, "codecs": codecs, "measurements": measurements}))
    return path


def run(*args: str) -> str:
    result = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300, check=True)
    return result.stdout


def test_per_image_rates_are_tallied_and_each_curves_reach_printed(tmp_path):
    out = run(str(_results(tmp_path)), "--reference", "a", "--per-image", "--tally", "--span")
    psnr_table = out.split("Per image, psnr")[1].split("Per image, ssim")[0]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in psnr_table.splitlines() if line.startswith("| ")}
    assert float(rows["one"][1]) == -20.0 and float(rows["two"][1]) == 25.0  # the factors, as BD-rates of b
    assert rows["below zero"] == ["0/2", "1/2"]  # a against itself is never below zero; b on image one is

    reach = out.split("Average curve's reach")[1]
    spans = {line.split("|")[1].strip(): line.split("|")[2:5] for line in reach.splitlines() if line.startswith("| ") and "codec" not in line}
    low_a, high_a, settings_a = (cell.strip() for cell in spans["a"])
    assert (low_a, high_a, settings_a) == ("0.100", f"{0.1 * 2 ** 3.5:.3f}", "8")
    assert abs(float(spans["b"][0]) - 0.1 * (0.8 + 1.25) / 2) <= 0.0005 + 1e-9  # the mean over the two images


def test_without_the_options_the_tables_are_as_before(tmp_path):
    out = run(str(_results(tmp_path)), "--reference", "a", "--per-image")
    assert "below zero" not in out and "reach" not in out


def test_a_tally_without_per_image_rows_is_refused_with_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), str(_results(tmp_path)), "--reference", "a", "--tally"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "--tally" in result.stderr and "Traceback" not in result.stderr


def test_pick_keeps_the_named_images_only(tmp_path):
    out = run(str(_results(tmp_path)), "--reference", "a", "--pick", "one")
    row = next(line for line in out.splitlines() if line.startswith("| b |"))
    assert float(row.split("|")[2]) == -20.0  # image one's factor alone, not the mean with image two


def test_picking_an_image_the_file_lacks_is_refused_with_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), str(_results(tmp_path)), "--reference", "a", "--pick", "three"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "three" in result.stderr and "Traceback" not in result.stderr
