"""Input images: which modes are coded, which are converted losslessly, which are refused."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cdcodec.codec.images import UnsupportedImageError, image_to_array, load_image


def test_rgb_and_grayscale_pass_through():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert np.array_equal(image_to_array(Image.fromarray(rgb)), rgb)
    gray = rgb[:, :, 0].copy()
    assert np.array_equal(image_to_array(Image.fromarray(gray)), gray)


def test_palette_becomes_rgb_without_loss():
    rgb = np.random.default_rng(1).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    pal = Image.fromarray(rgb).quantize(colors=16)
    assert np.array_equal(image_to_array(pal), np.asarray(pal.convert("RGB")))


def test_opaque_alpha_is_dropped_transparent_alpha_refused():
    rgba = np.full((4, 4, 4), 255, dtype=np.uint8)
    assert image_to_array(Image.fromarray(rgba, "RGBA")).shape == (4, 4, 3)
    rgba[0, 0, 3] = 10
    with pytest.raises(UnsupportedImageError, match="transparency"):
        image_to_array(Image.fromarray(rgba, "RGBA"))


def test_sixteen_bit_is_refused():
    img = Image.fromarray(np.zeros((4, 4), dtype=np.uint16))
    with pytest.raises(UnsupportedImageError, match="8 bits"):
        image_to_array(img)


def test_unreadable_file(tmp_path):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(UnsupportedImageError):
        load_image(bad)
