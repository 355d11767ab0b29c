"""The command line through click's CliRunner: success paths, exit codes, no partial outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cdcodec.bitstream import unpack
from cdcodec.cli.main import cli
from imagegen import smooth_image


@pytest.fixture()
def runner():
    return CliRunner()


@pytest.fixture()
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(smooth_image(30, 44, seed=4)).save(path)
    return path


@pytest.fixture()
def encoded(runner, photo, tiny_weights, tmp_path):
    out = tmp_path / "photo.cdc"
    result = runner.invoke(cli, ["encode", str(photo), str(out), "--model", str(tiny_weights)])
    assert result.exit_code == 0, result.output
    return out


def test_encode_reports_real_sizes(runner, photo, tiny_weights, tmp_path):
    out = tmp_path / "a.cdc"
    result = runner.invoke(cli, ["encode", str(photo), str(out), "--model", str(tiny_weights)])
    assert result.exit_code == 0
    size = out.stat().st_size
    assert f"{size} bytes" in result.stderr
    assert f"{8 * size / (30 * 44):.4f} bpp" in result.stderr
    assert "stage 1" in result.stderr and "stage 2" in result.stderr


def test_decode_all_and_some_stages(runner, encoded, tiny_weights, tmp_path):
    for stages in ([], ["--stages", "1"]):
        out = tmp_path / f"out{len(stages)}.png"
        result = runner.invoke(cli, ["decode", str(encoded), str(out), "--model", str(tiny_weights), *stages])
        assert result.exit_code == 0, result.output
        assert np.asarray(Image.open(out)).shape == (30, 44, 3)


@pytest.mark.parametrize("name", ["out.PNG", "out", "out.bmp", "out.ppm", "out.pnm", "out.tif", "out.tiff"])
def test_decode_writes_the_lossless_format_its_suffix_names(runner, encoded, tiny_weights, tmp_path, name):
    reference = tmp_path / "reference.png"
    assert runner.invoke(cli, ["decode", str(encoded), str(reference), "--model", str(tiny_weights)]).exit_code == 0
    out = tmp_path / name
    result = runner.invoke(cli, ["decode", str(encoded), str(out), "--model", str(tiny_weights)])
    assert result.exit_code == 0, result.output
    expected = {".png": "PNG", "": "PNG", ".bmp": "BMP", ".ppm": "PPM", ".pnm": "PPM", ".tif": "TIFF", ".tiff": "TIFF"}
    with Image.open(out) as written:
        assert written.format == expected[out.suffix.lower()]
        assert np.array_equal(np.asarray(written), np.asarray(Image.open(reference)))


@pytest.mark.parametrize("name", ["out.jpg", "out.webp", "out.cdc"])
def test_decode_refuses_a_lossy_or_unknown_suffix_before_writing(runner, encoded, tiny_weights, tmp_path, name):
    out, before = tmp_path / name, sorted(tmp_path.iterdir())
    result = runner.invoke(cli, ["decode", str(encoded), str(out), "--model", str(tiny_weights)])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"cdcodec: error: cannot write a {out.suffix} file: decoded images are written lossless, as .png, .bmp, .ppm, .pnm, .tif, .tiff"]
    assert sorted(tmp_path.iterdir()) == before


def test_info_json(runner, encoded):
    result = runner.invoke(cli, ["info", str(encoded), "--json"])
    assert result.exit_code == 0
    desc = json.loads(result.stdout)
    assert desc["width"] == 44 and desc["height"] == 30
    assert desc["file_bytes"] == encoded.stat().st_size
    assert [s["stage"] for s in desc["stages"]] == [1, 2]
    text = runner.invoke(cli, ["info", str(encoded)])
    assert text.exit_code == 0 and "stage 2" in text.stdout


def test_tables_are_tempered_by_default_and_no_temper_decodes_the_same(runner, photo, encoded, tiny_weights, tmp_path):
    plain = tmp_path / "plain.cdc"
    result = runner.invoke(cli, ["encode", str(photo), str(plain), "--model", str(tiny_weights), "--no-temper"])
    assert result.exit_code == 0, result.output
    for path, tempered in ((encoded, True), (plain, False)):
        desc = json.loads(runner.invoke(cli, ["info", str(path), "--json"]).stdout)
        assert all(bool(stage.get("tempered_tables")) is tempered for stage in desc["stages"])
        assert ("tempered tables" in runner.invoke(cli, ["info", str(path)]).stdout) is tempered
    images = []
    for path in (encoded, plain):
        out = tmp_path / f"{path.stem}-decoded.png"
        assert runner.invoke(cli, ["decode", str(path), str(out), "--model", str(tiny_weights)]).exit_code == 0
        images.append(np.asarray(Image.open(out)))
    assert np.array_equal(*images)


def test_truncate_writes_the_byte_prefix(runner, encoded, tmp_path):
    out = tmp_path / "one.cdc"
    result = runner.invoke(cli, ["truncate", str(encoded), str(out), "--stages", "1"])
    assert result.exit_code == 0
    assert encoded.read_bytes().startswith(out.read_bytes())
    assert unpack(out.read_bytes()).stages_present == 1


BAD_INPUTS = {
    "empty": b"",
    "not-cdc": b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
    "text": b"hello world",
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS) + ["truncated", "corrupt"])
def test_bad_inputs_fail_cleanly(runner, encoded, tiny_weights, tmp_path, name):
    data = encoded.read_bytes()
    if name == "truncated":
        blob = data[: len(data) - 3]
    elif name == "corrupt":
        damaged = bytearray(data)
        damaged[len(damaged) // 2] ^= 0xFF
        blob = bytes(damaged)
    else:
        blob = BAD_INPUTS[name]
    bad = tmp_path / f"{name}.cdc"
    bad.write_bytes(blob)
    for args in (["decode", str(bad), str(tmp_path / "o.png"), "--model", str(tiny_weights)], ["info", str(bad)],
                 ["truncate", str(bad), str(tmp_path / "o.cdc"), "--stages", "1"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 1, (args, result.output)
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.stderr.startswith("cdcodec: error:")
        assert "Traceback" not in result.output
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "o.cdc").exists()
    assert bad.read_bytes() == blob
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_traceback_only_on_request(runner, tmp_path):
    bad = tmp_path / "bad.cdc"
    bad.write_bytes(b"junk")
    quiet = runner.invoke(cli, ["info", str(bad)])
    loud = runner.invoke(cli, ["--traceback", "info", str(bad)])
    assert "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr and loud.exit_code == 1


def test_bad_image_input(runner, tmp_path, tiny_weights):
    src = tmp_path / "bad.png"
    src.write_bytes(b"not really a png")
    result = runner.invoke(cli, ["encode", str(src), str(tmp_path / "x.cdc"), "--model", str(tiny_weights)])
    assert result.exit_code == 1 and not (tmp_path / "x.cdc").exists()
    missing = runner.invoke(cli, ["encode", str(tmp_path / "nope.png"), str(tmp_path / "x.cdc")])
    assert missing.exit_code == 1


def test_a_colour_profile_that_is_not_kept_is_said_in_one_line(runner, tmp_path, tiny_weights):
    from PIL import ImageCms

    src = tmp_path / "wide.png"
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    Image.fromarray(smooth_image(30, 44, seed=5)).save(src, icc_profile=lab)
    result = runner.invoke(cli, ["encode", str(src), str(tmp_path / "x.cdc"), "--model", str(tiny_weights)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warnings == ["cdcodec: warning: the image's colour profile (Lab identity built-in) is not kept: the decoded image is read as sRGB"]
    assert (tmp_path / "x.cdc").stat().st_size > 0


def test_existing_output_needs_force(runner, photo, encoded, tiny_weights):
    before = encoded.read_bytes()
    refused = runner.invoke(cli, ["encode", str(photo), str(encoded), "--stages", "1", "--model", str(tiny_weights)])
    assert refused.exit_code == 1 and "--force" in refused.stderr
    assert encoded.read_bytes() == before
    forced = runner.invoke(cli, ["encode", str(photo), str(encoded), "--stages", "1", "--force", "--model", str(tiny_weights)])
    assert forced.exit_code == 0
    assert unpack(encoded.read_bytes()).stages_present == 1


def test_output_may_not_be_the_input(runner, encoded):
    before = encoded.read_bytes()
    result = runner.invoke(cli, ["truncate", str(encoded), str(encoded), "--stages", "1", "--force"])
    assert result.exit_code == 1 and encoded.read_bytes() == before


def test_usage_errors_exit_2(runner, encoded, tmp_path):
    assert runner.invoke(cli, ["decode"]).exit_code == 2
    assert runner.invoke(cli, ["decode", str(encoded), str(tmp_path / "o.png"), "--stages", "0"]).exit_code == 2
    assert runner.invoke(cli, ["frobnicate"]).exit_code == 2


def test_too_many_stages_is_bad_input(runner, encoded, tiny_weights, tmp_path):
    result = runner.invoke(cli, ["decode", str(encoded), str(tmp_path / "o.png"), "--stages", "5", "--model", str(tiny_weights)])
    assert result.exit_code == 1 and not (tmp_path / "o.png").exists()


def test_lossless_and_near_lossless_from_the_cli(runner, photo, tiny_weights, tmp_path):
    original = np.asarray(Image.open(photo))
    for flags, bound in ((["--lossless"], 0), (["--max-error", "2"], 2)):
        cdc, png = tmp_path / "x.cdc", tmp_path / "x.png"
        assert runner.invoke(cli, ["encode", str(photo), str(cdc), "--force", "--model", str(tiny_weights), *flags]).exit_code == 0
        assert runner.invoke(cli, ["decode", str(cdc), str(png), "--force", "--model", str(tiny_weights)]).exit_code == 0
        assert np.abs(np.asarray(Image.open(png)).astype(int) - original).max() <= bound
        info = runner.invoke(cli, ["info", str(cdc)])
        assert ("lossless" in info.stdout) and (bound == 0 or "max error 2" in info.stdout)
    both = runner.invoke(cli, ["encode", str(photo), str(tmp_path / "y.cdc"), "--lossless", "--max-error", "1"])
    assert both.exit_code == 2


def test_quality_option(runner, photo, tiny_weights, tmp_path):
    sizes = []
    for level in ("0", "2"):
        out = tmp_path / f"q{level}.cdc"
        result = runner.invoke(cli, ["encode", str(photo), str(out), "--quality", level, "--model", str(tiny_weights)])
        assert result.exit_code == 0, result.output
        sizes.append(out.stat().st_size)
        assert f"quality level {level}" in runner.invoke(cli, ["info", str(out)]).stdout
    assert sizes[0] < sizes[1]
    bad = runner.invoke(cli, ["encode", str(photo), str(tmp_path / "q9.cdc"), "--quality", "9", "--model", str(tiny_weights)])
    assert bad.exit_code == 1 and not (tmp_path / "q9.cdc").exists()


def test_effort_is_the_search_rounds_and_its_help_names_the_default(runner, photo, tiny_weights, tmp_path):
    from cdcodec.codec.pipeline import DEFAULT_SEARCH_ROUNDS, encode, get_model

    assert f"(default: {DEFAULT_SEARCH_ROUNDS};" in runner.invoke(cli, ["encode", "--help"]).output
    model = get_model(tiny_weights)
    pixels = np.asarray(Image.open(photo))
    for effort in ("0", "2"):
        out = tmp_path / f"effort{effort}.cdc"
        result = runner.invoke(cli, ["encode", str(photo), str(out), "--model", str(tiny_weights), "--effort", effort])
        assert result.exit_code == 0, result.output
        assert out.read_bytes() == encode(pixels, model=model, search_rounds=int(effort))
    result = runner.invoke(cli, ["encode", str(photo), str(tmp_path / "bad.cdc"), "--effort", "-1"])
    assert result.exit_code != 0 and not (tmp_path / "bad.cdc").exists()


def test_tune_psnr_makes_the_search_weigh_squared_error_alone(runner, tiny_weights, tmp_path, monkeypatch):
    """--tune model searches what the model was trained for, --tune psnr squared error alone;
    they differ for a model trained with MS-SSIM in its mix, on a picture large enough for MS-SSIM."""
    from cdcodec.codec import pipeline

    monkeypatch.setattr(pipeline, "trained_ms_ssim_share", lambda model_id: 0.5)
    big = tmp_path / "big.png"
    Image.fromarray(smooth_image(176, 168, seed=9)).save(big)
    pixels = np.asarray(Image.open(big))
    model = pipeline.get_model(tiny_weights)
    files = {}
    for tune in ("model", "psnr"):
        out = tmp_path / f"{tune}.cdc"
        result = runner.invoke(cli, ["encode", str(big), str(out), "--model", str(tiny_weights), "--effort", "1", "--tune", tune])
        assert result.exit_code == 0, result.output
        files[tune] = out.read_bytes()
    assert files["model"] == pipeline.encode(pixels, model=model, search_rounds=1)
    assert files["psnr"] == pipeline.encode(pixels, model=model, search_rounds=1, search_ms_ssim_share=0.0)
    assert files["psnr"] == pipeline.encode(pixels, model=model, search_rounds=1, tune="psnr")
    assert files["psnr"] != files["model"]
    assert "--tune [" + "|".join(pipeline.TUNINGS) + "]" in runner.invoke(cli, ["encode", "--help"]).output
