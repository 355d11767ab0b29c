"""Input images: which modes are coded, which are converted losslessly, which are refused; EXIF orientation and colour profiles."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cdcodec.codec.images import ColourProfileWarning, UnsupportedImageError, image_to_array, load_image


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


def _exif_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_exif_orientation_turns_the_pixels_as_a_viewer_would(tmp_path, fmt):
    stored = np.random.default_rng(2).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    path = tmp_path / f"turned.{fmt.lower()}"
    Image.fromarray(stored).save(path, format=fmt, exif=_exif_orientation(6), quality=100)
    with Image.open(path) as img:
        raw = np.asarray(img.convert("RGB"))
    pixels = load_image(path)
    assert pixels.shape == (10, 6, 3)  # orientation 6: turned a quarter clockwise to be seen upright
    assert np.array_equal(pixels, np.rot90(raw, k=-1))


def test_exif_orientation_leaves_the_callers_image_alone():
    stored = np.arange(6 * 4, dtype=np.uint8).reshape(6, 4)
    img = Image.fromarray(stored)
    img.info["exif"] = _exif_orientation(3)  # turned half a turn
    img.getexif()[0x0112] = 3
    assert np.array_equal(image_to_array(img), stored[::-1, ::-1])
    assert np.array_equal(np.asarray(img), stored) and img.getexif().get(0x0112) == 3


def _profile(name: str) -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile(name)).tobytes()


def test_a_profile_other_than_srgb_is_coded_as_is_with_a_warning(tmp_path):
    rgb = np.random.default_rng(3).integers(0, 256, (5, 5, 3), dtype=np.uint8)
    path = tmp_path / "lab.png"
    Image.fromarray(rgb).save(path, icc_profile=_profile("LAB"))
    with pytest.warns(ColourProfileWarning, match="not kept"):
        assert np.array_equal(load_image(path), rgb)
    Image.fromarray(rgb).save(path, icc_profile=b"not a profile")
    with pytest.warns(ColourProfileWarning, match="unreadable"):
        load_image(path)


def test_srgb_or_no_profile_raises_no_warning(tmp_path, recwarn):
    rgb = np.zeros((3, 3, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "srgb.png", icc_profile=_profile("sRGB"))
    Image.fromarray(rgb).save(tmp_path / "plain.png")
    load_image(tmp_path / "srgb.png")
    load_image(tmp_path / "plain.png")
    assert not [w for w in recwarn if issubclass(w.category, ColourProfileWarning)]


def test_a_refused_image_gives_its_error_not_a_profile_warning(recwarn):
    img = Image.fromarray(np.zeros((4, 4), dtype=np.uint16))
    img.info["icc_profile"] = _profile("LAB")
    with pytest.raises(UnsupportedImageError, match="8 bits"):
        image_to_array(img)
    assert not recwarn.list
