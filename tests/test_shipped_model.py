"""The shipped default model: loads, matches its manifest, and is progressive on real photos."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

import cdcodec
from cdcodec.bitstream import truncate, unpack
from cdcodec.bench.cdcodec_source import MS_SSIM_MODEL
from cdcodec.codec.weights import default_model_id, file_digest, load_shipped, read_manifest, trained_dir


def psnr(a, b):
    return 10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def test_manifest_matches_the_weights_on_disk():
    manifest = read_manifest()
    assert manifest["default"] == default_model_id()
    for entry in manifest["models"]:
        path = trained_dir() / entry["file"]
        assert file_digest(path) == entry["sha256"]
        assert path.stat().st_size == entry["bytes"]
        assert {"command", "data", "device", "settings"} <= set(entry["training"])
    total = sum((trained_dir() / m["file"]).stat().st_size for m in manifest["models"])
    assert total <= 50 * 1024 * 1024
    shipped = {m["id"] for m in manifest["models"]}
    for entry in manifest.get("retired", []):
        assert entry["id"] not in shipped and {"command", "data", "settings"} <= set(entry["training"])
        assert bool(entry["file"]) == bool(entry["weights_commit"])  # no file: never shipped


def test_the_default_model_loads_once_whether_named_or_not():
    codec, digest = load_shipped(None)
    named_codec, named_digest = load_shipped(default_model_id())
    assert named_codec is codec and named_digest == digest


def check_progressive(image: np.ndarray, model: str | None = None) -> None:
    data = cdcodec.encode(image, model=model)
    stages = unpack(data).stages_present
    assert stages >= 3
    rates, qualities = [], []
    for k in range(1, stages + 1):
        prefix = truncate(data, k)
        decoded = cdcodec.decode(data, stages=k)
        assert np.array_equal(decoded, cdcodec.decode(prefix))
        rates.append(8 * len(prefix) / (image.shape[0] * image.shape[1]))
        qualities.append(psnr(image, decoded))
    assert rates == sorted(rates) and len(set(rates)) == len(rates)
    assert all(b > a for a, b in zip(qualities, qualities[1:]))


def test_progressive_on_a_bundled_photo():
    from skimage import data

    check_progressive(data.astronaut()[::2, ::2].copy())


def test_ms_ssim_model_is_progressive_and_named_in_its_files():
    """The second shipped model: its files decode without naming it (the header does), stage by stage."""
    from skimage import data

    image = data.astronaut()[::2, ::2].copy()
    check_progressive(image, MS_SSIM_MODEL)
    assert cdcodec.describe(cdcodec.encode(image, model=MS_SSIM_MODEL))["model_id"] == MS_SSIM_MODEL


def test_a_file_of_a_retired_model_says_where_its_weights_are(tmp_path):
    """A model that left trained/ still names the git commit that holds its weights, in one line."""
    from click.testing import CliRunner
    from skimage import data

    from cdcodec.bitstream import CdcFormatError, pack
    from cdcodec.cli.main import cli

    retired = next(m for m in read_manifest()["retired"] if m.get("weights_commit"))
    parsed = unpack(cdcodec.encode(data.astronaut()[::8, ::8].copy(), stages=1))
    header = dataclasses.replace(parsed.header, model_id=retired["id"], weights_digest=bytes.fromhex(retired["sha256"]))
    old_file = tmp_path / "old.cdc"
    old_file.write_bytes(pack(header, parsed.payloads))
    with pytest.raises(CdcFormatError, match=f"git show {retired['weights_commit'][:12]}:trained/{retired['file']}"):
        cdcodec.decode(old_file.read_bytes())
    result = CliRunner().invoke(cli, ["decode", str(old_file), str(tmp_path / "out.png")])
    assert result.exit_code == 1 and "no longer shipped" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "out.png").exists()


def test_grayscale_photo():
    from skimage import data

    gray = data.camera()[::2, ::2].copy()
    out = cdcodec.decode(cdcodec.encode(gray))
    assert out.shape == gray.shape and psnr(gray, out) > 30


@pytest.mark.shared
@pytest.mark.parametrize("name", ["kodim05.png", "kodim23.png"])
def test_progressive_on_kodak(kodak_dir, name):
    check_progressive(np.asarray(Image.open(kodak_dir / name).convert("RGB")))


def test_exact_modes_on_a_bundled_photo():
    from skimage import data

    image = data.coffee()[::2, ::2].copy()
    assert np.array_equal(cdcodec.decode(cdcodec.encode(image, stages=1, lossless=True)), image)
    near = cdcodec.decode(cdcodec.encode(image, max_error=2))
    assert np.abs(near.astype(int) - image.astype(int)).max() <= 2


@pytest.mark.shared
def test_lossless_on_kodak_is_exact_with_any_thread_count(kodak_dir):
    import torch

    image = np.asarray(Image.open(kodak_dir / "kodim07.png").convert("RGB"))
    data = cdcodec.encode(image, lossless=True)
    before = torch.get_num_threads()
    try:
        decoded = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            decoded.append(cdcodec.decode(data))
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(decoded[0], image) and np.array_equal(decoded[1], image)
