"""Tests of the benchmark (`cdcodec.bench`) on tiny synthetic images; fast, no shared data."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import math
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import cdcodec
from cdcodec.bench import bdrate, metrics
from cdcodec.bench.cdcodec_source import (
    CDCODEC, CDCODEC_MSSSIM, CDCODEC_PSNR, CDCODEC_PSNR_EFFORT, MS_SSIM_MODEL, cdcodec_points,
)
from cdcodec.bench.codecs import BASELINES, LOSSLESS, LOSSY, NEAR_LOSSLESS, baseline
from cdcodec.bench.command import bench_command
from cdcodec.bench.curves import average_curve, quality_at_rate
from cdcodec.bench.images import bundled_images
from cdcodec.bench.jsonfile import read_json, write_json
from cdcodec.bitstream import Header, StageInfo, StageKind, pack, truncate, unpack


def synthetic(height: int = 40, width: int = 56, seed: int = 0) -> np.ndarray:
    """A smooth colour gradient with a little texture: compresses like a (tiny) photo."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 200 / width, y * 200 / height, (x + y) * 100 / (width + height) + 60], axis=2)
    texture = 20 * np.sin(x / 3.0)[..., None] * np.cos(y / 4.0)[..., None] + rng.normal(0, 4, (height, width, 3))
    return np.clip(base + texture, 0, 255).astype(np.uint8)


# --- BD-rate --------------------------------------------------------------------------

RATES = [0.1, 0.25, 0.5, 1.0, 2.0]
PSNRS = [26.0, 29.0, 32.5, 36.0, 39.0]


@pytest.mark.parametrize("method", bdrate.METHODS)
def test_bd_rate_of_identical_curves_is_zero(method):
    assert bdrate.bd_rate(RATES, PSNRS, RATES, PSNRS, method) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("method", bdrate.METHODS)
@pytest.mark.parametrize("factor,expected", [(0.5, -50.0), (2.0, 100.0), (0.9, -10.0)])
def test_bd_rate_of_scaled_rate_curve(method, factor, expected):
    scaled = [r * factor for r in RATES]
    assert bdrate.bd_rate(RATES, PSNRS, scaled, PSNRS, method) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("method", bdrate.METHODS)
def test_bd_rate_integrates_only_over_the_common_quality_range(method):
    # Log rate linear in quality, which both fits reproduce exactly on any subset of points.
    quals = [24.0, 28.0, 32.0, 36.0, 40.0, 44.0]
    rates = [0.05 * math.exp((q - 24.0) / 6.0) for q in quals]
    # The test curve covers only the upper part: half the rate there, and far worse below,
    # which must not count because the reference has no points to compare it with.
    test_quals = [20.0] + quals[3:]
    test_rates = [50.0] + [r * 0.5 for r in rates[3:]]
    assert bdrate.overlap(quals, test_quals) == (24.0, 44.0)
    assert bdrate.bd_rate(rates, quals, test_rates[1:], test_quals[1:], method) == pytest.approx(-50.0, abs=1e-9)


def test_bd_rate_in_window_counts_only_the_rates_inside_it():
    # Log rate linear in quality. The test curve needs half the reference's bits up to
    # 0.5 bpp of the reference and twice them above: over the whole curve the two
    # halves roughly cancel, inside a low window only the saving shows. (PCHIP, the
    # bench's default, follows the jump locally; one cubic over the whole curve cannot.)
    method = "pchip"
    quals = [24.0 + 2.0 * k for k in range(11)]
    rates = [0.05 * math.exp((q - 24.0) / 6.0) for q in quals]
    test_rates = [r * (0.5 if r <= 0.5 else 2.0) for r in rates]
    low_window = bdrate.bd_rate_in_window(rates, quals, test_rates, quals, 0.05, 0.25, method)
    high_window = bdrate.bd_rate_in_window(rates, quals, test_rates, quals, 1.0, 4.0, method)
    assert low_window == pytest.approx(-50.0, abs=0.5)
    assert high_window == pytest.approx(100.0, abs=1.0)
    assert bdrate.bd_rate_in_window(rates, quals, rates, quals, 0.1, 1.0, method) == pytest.approx(0.0, abs=1e-9)


def test_bd_rate_in_window_outside_both_curves_is_none():
    assert bdrate.bd_rate_in_window(RATES, PSNRS, RATES, PSNRS, 5.0, 9.0) is None


def test_bd_rate_without_overlap_is_none():
    assert bdrate.bd_rate(RATES, PSNRS, RATES, [q + 20 for q in PSNRS]) is None
    assert bdrate.bd_rate(RATES, PSNRS, [1.0], [30.0]) is None


def test_rd_hull_drops_dominated_and_missing_points():
    log_rates, quals = bdrate.rd_hull([0.5, 0.2, 0.3, 0.4, 1.0, 0.0], [30.0, 25.0, 24.0, None, 33.0, 20.0])
    assert np.allclose(np.exp(log_rates), [0.2, 0.5, 1.0])
    assert list(quals) == [25.0, 30.0, 33.0]


def test_bd_rate_rejects_unknown_method():
    with pytest.raises(ValueError, match="unknown BD-rate method"):
        bdrate.bd_rate(RATES, PSNRS, RATES, PSNRS, method="linear")


# --- metrics and curves -------------------------------------------------------------------


def test_metrics_of_exact_and_small_images():
    image = synthetic()
    exact = metrics.measure(image, image.copy(), 100)
    assert exact["psnr"] is None and exact["max_abs_error"] == 0
    assert exact["ssim"] == pytest.approx(1.0)
    assert exact["ms_ssim"] is None  # 40 px is below MS-SSIM's 161 px minimum
    assert exact["bpp"] == pytest.approx(800 / (40 * 56)) and exact["bpsp"] == pytest.approx(800 / (40 * 56 * 3))


def test_psnr_and_max_error_of_a_known_error():
    image = synthetic()
    shifted = image.astype(np.int16)
    shifted[0, 0, 0] += 3 if shifted[0, 0, 0] < 250 else -3
    shifted = shifted.astype(np.uint8)
    assert metrics.max_abs_error(image, shifted) == 3
    assert metrics.psnr(image, shifted) == pytest.approx(10 * math.log10(255**2 / (9 / image.size)))


def test_ms_ssim_is_reported_on_images_large_enough():
    image = synthetic(170, 170)
    noisy = np.clip(image.astype(int) + 5, 0, 255).astype(np.uint8)
    value = metrics.ms_ssim(image, noisy)
    assert value is not None and 0.9 < value < 1.0


def test_average_curve_is_a_mean_per_setting():
    records = [
        {"image": img, "codec": "x", "setting": s, "bpp": bpp, "bpsp": bpp / 3, "psnr": psnr, "ssim": 0.9,
         "ms_ssim": None, "max_abs_error": 9, "encode_s": 0.1, "decode_s": 0.01}
        for img, s, bpp, psnr in [("a", 1, 0.2, 30.0), ("b", 1, 0.4, 32.0), ("a", 2, 1.0, 36.0), ("b", 2, 1.2, None)]
    ]
    curve = average_curve(records, "x")
    assert [p["setting"] for p in curve] == [1, 2]
    assert curve[0]["bpp"] == pytest.approx(0.3) and curve[0]["psnr"] == pytest.approx(31.0)
    assert curve[1]["psnr"] == pytest.approx(36.0) and curve[1]["psnr_n"] == 1
    assert curve[0]["ms_ssim"] is None
    # Linear in log rate between (0.3 bpp, 31 dB) and (1.1 bpp, 36 dB).
    expected = 31.0 + 5.0 * math.log(0.5 / 0.3) / math.log(1.1 / 0.3)
    assert quality_at_rate(curve, "psnr", 0.5) == pytest.approx(expected)
    assert quality_at_rate(curve, "psnr", 5.0) is None


# --- adapters -----------------------------------------------------------------------------


@pytest.mark.parametrize("codec", BASELINES, ids=lambda c: c.name)
def test_adapter_round_trips_a_tiny_image(codec):
    reason = codec.unavailable()
    if reason:
        pytest.skip(f"{codec.label}: {reason}")
    image = synthetic()
    settings = codec.settings if codec.kind != LOSSY else (codec.settings[len(codec.settings) // 2], codec.settings[-1])
    for point in _points(codec, image, settings):
        assert point.decoded.shape == image.shape and point.decoded.dtype == np.uint8
        assert len(point.data) > 0 and point.encode_s >= 0 and point.decode_s >= 0
        error = metrics.max_abs_error(image, point.decoded)
        if codec.kind == LOSSLESS:
            assert error == 0
        elif codec.kind == NEAR_LOSSLESS:
            assert 0 < error <= point.setting
        else:
            assert metrics.psnr(image, point.decoded) > 25.0


def _points(codec, image, settings):
    """The codec's points at only the given settings (a full sweep is too slow for a unit test)."""
    return dataclasses.replace(codec, settings=tuple(settings)).points(image)


def _encoded_size(codec, image, setting) -> int:
    return len(next(iter(_points(codec, image, (setting,)))).data)


def test_lossy_sweep_spans_low_to_high_rates():
    """Each lossy baseline's settings reach both ends of 0.1-2 bpp on a photo-like image."""
    image = bundled_images()[0].pixels[:192, :192]
    for name in ("jpeg420", "webp", "jpeg2000", "avif", "jpegxl"):
        codec = baseline(name)
        if codec.unavailable():
            continue
        lowest = min(_encoded_size(codec, image, s) for s in (codec.settings[0], codec.settings[-1]))
        highest = max(_encoded_size(codec, image, s) for s in (codec.settings[0], codec.settings[-1]))
        assert metrics.bpp(lowest, image) < 0.3, name
        assert metrics.bpp(highest, image) > 2.0, name


# --- independent check of JPEG and WebP with plain Pillow + numpy ------------------------------


def _plain_pillow(image: np.ndarray, **save_options) -> tuple[int, float]:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, **save_options)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")).astype(np.float64)
    mse = np.mean((decoded - image.astype(np.float64)) ** 2)
    return len(buffer.getvalue()), 10 * np.log10(255.0**2 / mse)


@pytest.mark.parametrize(
    "name,options",
    [
        ("jpeg420", {"format": "JPEG", "subsampling": 2, "optimize": True}),
        ("jpeg444", {"format": "JPEG", "subsampling": 0, "optimize": True}),
        ("webp", {"format": "WEBP", "method": 6}),
    ],
)
def test_jpeg_and_webp_agree_with_plain_pillow(name, options):
    image = bundled_images()[0].pixels[100:228, 150:278]  # a 128x128 crop of the astronaut
    codec = baseline(name)
    for quality in (10, 50, 90):
        point = next(iter(_points(codec, image, (quality,))))
        size, plain_psnr = _plain_pillow(image, quality=quality, **options)
        assert abs(metrics.psnr(image, point.decoded) - plain_psnr) < 0.1
        assert len(point.data) == size


# --- cdcodec as a codec -----------------------------------------------------------------------


def _fake_cdcodec(monkeypatch):
    """Stand-in for cdcodec.encode/decode: three stages, each a finer quantization of the image.

    Stage 1 carries the raw pixels, so that any prefix can be decoded without side channels.
    """
    steps = (32, 8, 2)
    models = []

    def encode(image, quality=None, model=None):
        models.append(model)
        header = Header(image.shape[1], image.shape[0], 3, "fake", bytes(32), (StageInfo(StageKind.LATENT),) * 3)
        return pack(header, [image.tobytes(), bytes(100), bytes(200)])

    def decode(data, stages=None, model=None):
        models.append(model)
        parsed = unpack(data)
        present = parsed.stages_present
        assert stages in (None, present), "the benchmark must decode the k-stage prefix itself"
        image = np.frombuffer(parsed.payloads[0], np.uint8).reshape(parsed.header.height, parsed.header.width, 3)
        step = steps[present - 1]
        return (image // step * step + step // 2).astype(np.uint8)

    monkeypatch.setattr(cdcodec, "encode", encode, raising=False)
    monkeypatch.setattr(cdcodec, "decode", decode, raising=False)
    monkeypatch.setattr(cdcodec, "quality_levels", lambda model=None: 1, raising=False)
    encode.models = models
    return encode


def test_cdcodec_points_are_stage_prefixes(monkeypatch):
    encode = _fake_cdcodec(monkeypatch)
    image = synthetic()
    assert CDCODEC.unavailable() is None
    points = list(cdcodec_points(image))
    full = encode(image)
    assert [p.setting for p in points] == ["q0 stages=1", "q0 stages=2", "q0 stages=3"]
    assert [len(p.data) for p in points] == [len(truncate(full, k)) for k in (1, 2, 3)]
    psnrs = [metrics.psnr(image, p.decoded) for p in points]
    assert psnrs == sorted(psnrs)


def test_ms_ssim_source_codes_with_its_own_model(monkeypatch):
    encode = _fake_cdcodec(monkeypatch)
    monkeypatch.setattr(CDCODEC_MSSSIM, "_warm", False)
    assert CDCODEC_MSSSIM.unavailable() is None
    points = list(CDCODEC_MSSSIM.points(synthetic()))
    assert len(points) == 3
    assert set(encode.models) == {MS_SSIM_MODEL}  # warm-up, encode and every prefix's decode


@pytest.mark.parametrize("source, options", [
    (CDCODEC_PSNR, {"tune": "psnr"}),
    (CDCODEC_PSNR_EFFORT, {"tune": "psnr", "search_rounds": 8}),
])
def test_psnr_sources_code_with_the_search_on_squared_error_alone(monkeypatch, source, options):
    """`cdcodec-psnr` is `cdcodec encode --tune psnr` and `cdcodec-psnr-effort8` adds
    `--effort 8`: the default model, its encodes given exactly those options."""
    encode = _fake_cdcodec(monkeypatch)
    seen = []

    def tuned(image, quality=None, model=None, **kwargs):
        seen.append(kwargs)
        return encode(image, quality=quality, model=model)

    monkeypatch.setattr(cdcodec, "encode", tuned, raising=False)
    monkeypatch.setattr(source, "_warm", True)
    assert len(list(source.points(synthetic()))) == 3
    assert seen == [options] and set(encode.models) == {None}
    assert source.params["encode_options"] == options


def test_command_benchmarks_cdcodec_stage_by_stage(tmp_path, image_dir, monkeypatch):
    _fake_cdcodec(monkeypatch)
    result, doc = _invoke(tmp_path, image_dir, "cdcodec,jpeg420", reference="jpeg420")
    stages = [m for m in doc["measurements"] if m["codec"] == "cdcodec"]
    assert sorted({m["setting"] for m in stages}) == ["q0 stages=1", "q0 stages=2", "q0 stages=3"]
    assert len(stages) == 6 and doc["errors"] == []
    assert [p["setting"] for p in doc["summary"]["average_curves"]["cdcodec"]] == ["q0 stages=1", "q0 stages=2", "q0 stages=3"]
    assert "| cdcodec" in result.stdout


def test_cdcodec_without_a_model_is_skipped_with_the_reason(monkeypatch):
    def encode(image, model=None):
        raise FileNotFoundError("no trained model")

    monkeypatch.setattr(cdcodec, "encode", encode, raising=False)
    monkeypatch.setattr(cdcodec, "decode", lambda data, stages=None, model=None: None, raising=False)
    monkeypatch.setattr(CDCODEC, "_warm", False)
    assert CDCODEC.unavailable() == "cannot encode yet: FileNotFoundError: no trained model"


def test_cdcodec_is_skipped_with_a_reason_when_its_api_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "cdcodec", types.ModuleType("cdcodec"))  # a cdcodec without the API
    assert CDCODEC.unavailable() == "cdcodec.encode and cdcodec.decode not available yet"


# --- the command: JSON schema, summary, missing codecs ------------------------------------------


@pytest.fixture
def image_dir(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for seed in range(2):
        Image.fromarray(synthetic(seed=seed)).save(folder / f"img{seed}.png")
    return folder


def _invoke(tmp_path, image_dir, codecs: str, reference: str = "webp"):
    out = tmp_path / "out" / "r.json"
    result = CliRunner().invoke(
        bench_command,
        ["--images", str(image_dir), "--codecs", codecs, "--reference", reference,
         "--out", str(out), "--plot", str(tmp_path / "out" / "rd.png")],
    )
    assert result.exit_code == 0, result.output
    return result, json.loads(out.read_text())


def test_command_writes_json_plots_and_summary(tmp_path, image_dir):
    codecs = "jpeg420,webp,png,jpegls-near"
    result, doc = _invoke(tmp_path, image_dir, codecs)
    for key in ("schema", "complete", "created", "options", "environment", "images", "codecs", "skipped", "errors",
                "measurements", "summary"):
        assert key in doc
    assert doc["schema"] == "cdcodec-bench/1" and doc["complete"] is True
    assert [i["name"] for i in doc["images"]] == ["img0", "img1"]
    assert {c["name"] for c in doc["codecs"]} <= set(codecs.split(","))
    expected = sum(len(baseline(c["name"]).settings) for c in doc["codecs"]) * 2
    assert len(doc["measurements"]) == expected
    types = {"image": str, "codec": str, "bytes": int, "bpp": float, "bpsp": float, "max_abs_error": int,
             "encode_s": float, "decode_s": float}
    for record in doc["measurements"]:
        for key, kind in types.items():
            assert isinstance(record[key], kind), key
        assert isinstance(record["setting"], (int, float, str))
        assert record["psnr"] is None or isinstance(record["psnr"], float)
        assert isinstance(record["ssim"], float)
        assert record["ms_ssim"] is None  # tiny images
        assert record["bpp"] == pytest.approx(8 * record["bytes"] / (40 * 56))
    summary = doc["summary"]
    assert summary["reference"] == "webp"
    if "webp" in summary["bd_rate_percent"]:
        assert summary["bd_rate_percent"]["webp"]["psnr"] == pytest.approx(0.0, abs=1e-9)
        assert summary["bd_rate_percent"]["webp"]["ms_ssim"] is None
    assert summary["lossless"]["png"][0]["max_abs_error"] == 0
    assert doc["errors"] == []
    for tag in ("psnr", "ssim", "msssim"):
        assert (tmp_path / "out" / f"rd-{tag}.png").stat().st_size > 1000
    assert "BD-rate (%) against WebP" in result.stdout
    assert "| PNG" in result.stdout


def test_missing_library_is_skipped_by_name_and_the_run_continues(tmp_path, image_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "imagecodecs", None)  # import imagecodecs now raises ImportError
    result, doc = _invoke(tmp_path, image_dir, "png,avif,jpegls", reference="png")
    assert {s["codec"] for s in doc["skipped"]} == {"avif", "jpegls"}
    assert "skipped: AVIF (imagecodecs not installed" in result.stdout
    assert {m["codec"] for m in doc["measurements"]} == {"png"}


def test_unknown_codec_name_is_a_usage_error(tmp_path, image_dir):
    result = CliRunner().invoke(bench_command, ["--images", str(image_dir), "--codecs", "jpeg,png"])
    assert result.exit_code == 2
    assert "unknown codec(s) jpeg" in result.output


def test_plain_bench_leaves_out_the_slowest_encoder_setting_and_all_adds_it():
    from cdcodec.bench.command import _select

    plain = {source.name for source in _select(None)}
    every = {source.name for source in _select("all")}
    assert "cdcodec-psnr-effort8" not in plain and "cdcodec-psnr-effort8" in every
    assert every - plain == {"cdcodec-psnr-effort8"}
    assert {source.name for source in _select("cdcodec-psnr-effort8,webp")} == {"cdcodec-psnr-effort8", "webp"}


def test_bundled_images_need_no_network():
    images = bundled_images()
    assert len(images) >= 4
    for image in images:
        assert image.pixels.dtype == np.uint8 and image.pixels.ndim == 3 and image.pixels.shape[2] == 3


def test_reuse_takes_over_matching_measurements_without_encoding(tmp_path, image_dir, monkeypatch):
    _, first = _invoke(tmp_path, image_dir, "png,jpeg420", reference="jpeg420")
    previous = tmp_path / "previous.json"
    previous.write_text(json.dumps(first))

    def broken(*args, **kwargs):
        raise AssertionError("a reused measurement must not be encoded again")

    monkeypatch.setattr("cdcodec.bench.codecs._pil_save", broken)
    out = tmp_path / "second.json"
    result = CliRunner().invoke(bench_command, ["--images", str(image_dir), "--codecs", "png,jpeg420", "--reference",
                                                "jpeg420", "--reuse", str(previous), "--out", str(out),
                                                "--plot", str(tmp_path / "second.png")])
    assert result.exit_code == 0, result.output
    second = json.loads(out.read_text())
    assert second["errors"] == []
    assert second["measurements"] == first["measurements"]


def test_reuse_reads_a_compressed_results_file_and_out_can_write_one(tmp_path, image_dir):
    _, first = _invoke(tmp_path, image_dir, "png", reference="png")
    previous = tmp_path / "previous.json.gz"
    write_json(previous, first)
    out = tmp_path / "second.json.gz"
    result = CliRunner().invoke(bench_command, ["--images", str(image_dir), "--codecs", "png", "--reference", "png",
                                                "--reuse", str(previous), "--out", str(out),
                                                "--plot", str(tmp_path / "second.png")])
    assert result.exit_code == 0, result.output
    assert f"reusing 2 (image, codec) measurements from {previous}" in result.output
    assert read_json(out)["measurements"] == first["measurements"]


def test_an_unreadable_reuse_file_is_one_line_of_error_and_no_output(tmp_path, image_dir):
    broken = tmp_path / "cut.json.gz"
    broken.write_bytes(gzip.compress(b'{"measurements": []}')[:-8])  # the gzip trailer cut off
    out = tmp_path / "never.json"
    result = CliRunner().invoke(bench_command, ["--images", str(image_dir), "--codecs", "png", "--reference", "png",
                                                "--reuse", str(broken), "--out", str(out)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: cannot read {broken}: ") and result.output.count("\n") == 1
    assert not out.exists()


def _rerun(tmp_path, image_dir, codecs: str, previous: dict, reference: str = "jpeg420") -> dict:
    """The bench again with --reuse of `previous`; its results document."""
    reuse, out = tmp_path / "previous.json", tmp_path / "again.json"
    reuse.write_text(json.dumps(previous))
    result = CliRunner().invoke(bench_command, ["--images", str(image_dir), "--codecs", codecs, "--reference", reference,
                                                "--reuse", str(reuse), "--out", str(out), "--plot", str(tmp_path / "again.png")])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def test_cdcodec_points_are_reused_only_from_the_same_build(tmp_path, image_dir, monkeypatch):
    """A cdcodec sweep outlasts a session: --reuse takes its points over while code, weights and
    numeric libraries are unchanged (the build fingerprint), and measures again once they differ."""
    from cdcodec.bench import cdcodec_source

    encode = _fake_cdcodec(monkeypatch)
    monkeypatch.setattr(CDCODEC, "_warm", True)
    _, first = _invoke(tmp_path, image_dir, "cdcodec,jpeg420", reference="jpeg420")
    build = cdcodec_source.build_fingerprint()
    assert build and len(build) == 64
    assert {c["name"]: c["params"].get("build") for c in first["codecs"]} == {"cdcodec": build, "jpeg420": None}

    encoded = len(encode.models)
    again = _rerun(tmp_path, image_dir, "cdcodec,jpeg420", first)
    assert len(encode.models) == encoded, "a reused cdcodec point must not be encoded again"
    assert again["measurements"] == first["measurements"]

    monkeypatch.setattr(cdcodec_source, "build_fingerprint", lambda model=None: "another build")
    _rerun(tmp_path, image_dir, "cdcodec,jpeg420", first)
    assert len(encode.models) > encoded

    monkeypatch.setattr(cdcodec_source, "build_fingerprint", lambda model=None: None)  # build unknown: never reused
    _, unknown = _invoke(tmp_path, image_dir, "cdcodec,jpeg420", reference="jpeg420")
    encoded = len(encode.models)
    _rerun(tmp_path, image_dir, "cdcodec,jpeg420", unknown)
    assert len(encode.models) > encoded


def test_build_fingerprint_follows_the_numeric_libraries(monkeypatch):
    from cdcodec.bench import cdcodec_source

    cdcodec_source.build_fingerprint.cache_clear()
    monkeypatch.setattr(cdcodec_source, "build_fingerprint", cdcodec_source.build_fingerprint.__wrapped__)
    here = cdcodec_source.build_fingerprint()
    assert here == cdcodec_source.build_fingerprint()
    real_version = cdcodec_source.metadata.version
    monkeypatch.setattr(cdcodec_source.metadata, "version",
                        lambda name: "0.0.1" if name == "constriction" else real_version(name))
    assert cdcodec_source.build_fingerprint() != here


def test_build_fingerprint_is_per_model():
    """A source's points depend on its own model: the MS-SSIM model's fingerprint differs from
    the default model's, and None means the default model."""
    from cdcodec.bench import cdcodec_source
    from cdcodec.codec.weights import default_model_id

    default = cdcodec_source.build_fingerprint()
    assert default == cdcodec_source.build_fingerprint(default_model_id())
    assert cdcodec_source.build_fingerprint(MS_SSIM_MODEL) not in (None, default)
    assert CDCODEC_MSSSIM.params["build"] == cdcodec_source.build_fingerprint(MS_SSIM_MODEL)
    assert cdcodec_source.build_fingerprint("no-such-model") is None
    per_model = [cdcodec_source.is_per_model(n) for n in
                 ("cdcodec.trained/manifest.json", "cdcodec.trained/a-1.safetensors", "cdcodec.trained/__init__.py",
                  "cdcodec.codec/manifest.json")]
    assert per_model == [True, True, False, False]


def test_training_code_is_outside_the_fingerprint():
    """Training a new model must not make the shipped models' measured points unreusable."""
    from cdcodec.bench.cdcodec_source import is_fingerprinted

    names = ("cdcodec.codec/training/train.py", "cdcodec.codec/training/fitting.py", "cdcodec.codec/pipeline.py",
             "cdcodec.codec/stage.py", "cdcodec.bitstream/entropy.py", "cdcodec.trained/__init__.py",
             "cdcodec.trained/manifest.json")
    assert [is_fingerprinted(name) for name in names] == [False, False, True, True, True, True, False]


def test_encode_and_decode_never_import_the_training_code():
    """What makes leaving codec/training/ out of the build fingerprint sound."""
    script = (
        "import sys, numpy as np, cdcodec\n"
        "pixels = np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)\n"
        "for options in ({}, {'tune': 'psnr'}, {'lossless': True}, {'max_error': 1}):\n"
        "    cdcodec.decode(cdcodec.encode(pixels, **options))\n"
        "cdcodec.decode(cdcodec.encode(pixels, model=sys.argv[1]), model=sys.argv[1])\n"
        "print(sorted(m for m in sys.modules if m.startswith('cdcodec.codec.training')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, MS_SSIM_MODEL], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_fingerprinted_code_ignores_docstrings_and_comments_only():
    from cdcodec.bench.cdcodec_source import normalised

    code = b'"""Module."""\n\ndef f(x):\n    """Why."""\n    return x + 1  # one more\n'
    documented = b'"""The module, said better."""\n\n\ndef f(x):\n    # no docstring now\n    return x + 1\n'
    changed = b'"""Module."""\n\ndef f(x):\n    """Why."""\n    return x + 2\n'
    assert normalised("m.py", code) == normalised("m.py", documented)
    assert normalised("m.py", code) != normalised("m.py", changed)
    assert normalised("m.py", b"def f():\n    'only a docstring'\n") == normalised("m.py", b"def f():\n    pass\n")
    assert normalised("tables.json", b"{}") == b"{}"  # not Python: its bytes
    assert normalised("broken.py", b"def (") == b"def ("


def test_an_interrupted_run_leaves_a_checkpoint_that_resumes(tmp_path, image_dir, monkeypatch):
    """Kill the run on the second image: the JSON holds the first, and --reuse skips it next time."""
    import cdcodec.bench.codecs as codecs_module

    real_save = codecs_module._pil_save
    calls = {"images": set()}

    def save_then_stop(image, fmt, **options):
        calls["images"].add(image.tobytes()[:64])
        if len(calls["images"]) > 1:
            raise KeyboardInterrupt
        return real_save(image, fmt, **options)

    monkeypatch.setattr(codecs_module, "_pil_save", save_then_stop)
    out = tmp_path / "r.json"
    args = ["--images", str(image_dir), "--codecs", "png", "--reference", "png", "--out", str(out),
            "--plot", str(tmp_path / "rd.png")]
    result = CliRunner().invoke(bench_command, args)
    assert result.exit_code != 0
    partial = json.loads(out.read_text())
    assert partial["complete"] is False
    assert [i["name"] for i in partial["images"]] == ["img0"]
    assert {m["image"] for m in partial["measurements"]} == {"img0"}

    monkeypatch.setattr(codecs_module, "_pil_save", real_save)
    resumed = tmp_path / "resumed.json"
    result = CliRunner().invoke(bench_command, args[:-4] + ["--reuse", str(out), "--out", str(resumed),
                                                            "--plot", str(tmp_path / "rd.png")])
    assert result.exit_code == 0, result.output
    final = json.loads(resumed.read_text())
    assert final["complete"] is True and len(final["measurements"]) == 2
    assert final["measurements"][0] == partial["measurements"][0]
    assert final["options"]["reuse_paths"] == [str(out)]


def test_reuse_takes_several_files_the_later_one_winning(tmp_path, image_dir, monkeypatch):
    """A checkpoint holds only the images it finished: resume it together with the earlier full run
    whose baselines cover the rest, so that nothing measured before is measured again."""
    _, full = _invoke(tmp_path, image_dir, "png,jpeg420", reference="jpeg420")
    checkpoint = dict(full, images=full["images"][:1], complete=False,
                      measurements=[dict(m, bpp=m["bpp"] + 1) for m in full["measurements"] if m["image"] == "img0"])
    paths = [tmp_path / "full.json", tmp_path / "checkpoint.json"]
    for path, doc in zip(paths, (full, checkpoint)):
        path.write_text(json.dumps(doc))

    def broken(*args, **kwargs):
        raise AssertionError("a reused measurement must not be encoded again")

    monkeypatch.setattr("cdcodec.bench.codecs._pil_save", broken)
    out = tmp_path / "merged.json"
    result = CliRunner().invoke(bench_command, ["--images", str(image_dir), "--codecs", "png,jpeg420", "--reference", "jpeg420",
                                                "--reuse", str(paths[0]), "--reuse", str(paths[1]), "--out", str(out),
                                                "--plot", str(tmp_path / "merged.png")])
    assert result.exit_code == 0, result.output
    merged = json.loads(out.read_text())["measurements"]
    assert [m for m in merged if m["image"] == "img0"] == checkpoint["measurements"]
    assert [m for m in merged if m["image"] == "img1"] == [m for m in full["measurements"] if m["image"] == "img1"]


def test_upper_envelope_keeps_only_unbeaten_points():
    from cdcodec.bench.curves import upper_envelope

    points = [{"bpp": b, "psnr": q} for b, q in [(0.1, 25), (0.3, 29), (0.2, 30), (0.5, 31), (0.5, 32), (1.0, 31.5)]]
    assert [(p["bpp"], p["psnr"]) for p in upper_envelope(points, "psnr")] == [(0.1, 25), (0.2, 30), (0.5, 32)]


def test_real_cdcodec_exact_sources_are_exact():
    from cdcodec.bench.cdcodec_source import exact_points

    image = synthetic()
    for point in exact_points(image, ("lossless", 2)):
        bound = 0 if point.setting == "lossless" else point.setting
        assert np.abs(point.decoded.astype(int) - image.astype(int)).max() <= bound


def test_jobs_give_the_same_measurements_in_the_same_order(tmp_path, image_dir):
    """Worker processes get codec names, measure whole images and hand back what one process would have."""
    codecs = "png,jpeg420,webp"
    args = ["--images", str(image_dir), "--codecs", codecs, "--reference", "jpeg420"]
    runs = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}.json"
        result = CliRunner().invoke(bench_command, [*args, "--jobs", jobs, "--out", str(out), "--plot", str(tmp_path / f"p{jobs}.png")])
        assert result.exit_code == 0, result.output
        runs[jobs] = json.loads(out.read_text())

    def comparable(doc):
        return [{k: v for k, v in m.items() if not k.endswith("_s")} for m in doc["measurements"]]

    assert comparable(runs["2"]) == comparable(runs["1"])
    assert len({m["image"] for m in runs["2"]["measurements"]}) > 1


def test_results_name_the_cpu_whose_arithmetic_made_them():
    from cdcodec.bench.run import environment

    cpu = environment()["cpu"]
    assert cpu["torch_capability"]  # e.g. AVX2 or AVX512: which float kernels ran
    cpuinfo = Path("/proc/cpuinfo")
    if sys.platform == "linux" and "model name" in (cpuinfo.read_text() if cpuinfo.exists() else ""):
        assert cpu["model name"]
