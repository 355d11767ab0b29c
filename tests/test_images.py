"""Input images: which modes are coded, which are converted losslessly, which are refused; what is said
of what a file carries besides its first frame's pixels (EXIF orientation, colour profile, more frames)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cdcodec.codec.images import (
    OUTPUT_FORMATS,
    NotKeptWarning,
    UnsupportedImageError,
    image_to_array,
    load_image,
    output_format,
    save_image,
)


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


def test_a_corrupt_exif_block_leaves_the_pixels_as_stored(tmp_path):
    stored = np.random.default_rng(5).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    for fmt in ("PNG", "WEBP"):
        path = tmp_path / f"broken.{fmt.lower()}"
        Image.fromarray(stored).save(path, format=fmt, exif=b"Exif\x00\x00not a TIFF header", lossless=True)
        assert np.array_equal(load_image(path), stored)


def _profile(name: str) -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile(name)).tobytes()


def test_a_profile_other_than_srgb_is_coded_as_is_with_a_warning(tmp_path):
    rgb = np.random.default_rng(3).integers(0, 256, (5, 5, 3), dtype=np.uint8)
    path = tmp_path / "lab.png"
    Image.fromarray(rgb).save(path, icc_profile=_profile("LAB"))
    with pytest.warns(NotKeptWarning, match="not kept"):
        assert np.array_equal(load_image(path), rgb)
    Image.fromarray(rgb).save(path, icc_profile=b"not a profile")
    with pytest.warns(NotKeptWarning, match="unreadable"):
        load_image(path)


def test_srgb_or_no_profile_raises_no_warning(tmp_path, recwarn):
    rgb = np.zeros((3, 3, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "srgb.png", icc_profile=_profile("sRGB"))
    Image.fromarray(rgb).save(tmp_path / "plain.png")
    load_image(tmp_path / "srgb.png")
    load_image(tmp_path / "plain.png")
    assert not [w for w in recwarn if issubclass(w.category, NotKeptWarning)]


def test_a_refused_image_gives_its_error_not_a_profile_warning(recwarn):
    img = Image.fromarray(np.zeros((4, 4), dtype=np.uint16))
    img.info["icc_profile"] = _profile("LAB")
    with pytest.raises(UnsupportedImageError, match="8 bits"):
        image_to_array(img)
    assert not recwarn.list


def _png_16_bit(path, samples: np.ndarray, colour_type: int) -> None:
    """A 16-bit PNG written chunk by chunk: Pillow writes no 16-bit colour PNGs."""
    import struct
    import zlib

    h, w = samples.shape[:2]
    big_endian = samples.astype(">u2").reshape(h, -1)
    scanlines = b"".join(b"\x00" + row.tobytes() for row in big_endian)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(scanlines)) + chunk(b"IEND", b""))


@pytest.mark.parametrize(("colour_type", "channels"), [(2, 3), (6, 4), (4, 2)])
def test_sixteen_bit_colour_is_refused_though_pillow_opens_it_as_8_bit(tmp_path, colour_type, channels):
    samples = np.full((3, 4, channels), 0x1234)
    path = tmp_path / "deep.png"
    _png_16_bit(path, samples, colour_type)
    with Image.open(path) as img:
        assert img.mode in ("RGB", "RGBA")  # what Pillow makes of it: the top 8 bits of each sample
    with pytest.raises(UnsupportedImageError, match="16-bit images"):
        load_image(path)


def test_a_16_bit_bmp_holds_5_bit_samples_and_is_coded(tmp_path):
    """A 16-bit BMP packs 5 bits per sample (Pillow's raw mode "BGR;15"): nothing is cut."""
    import struct

    w, h = 2, 2
    packed = np.array([[0x7C00, 0x03E0], [0x001F, 0x7FFF]], dtype="<u2")  # red, green / blue, white
    rows = b"".join(row.tobytes() for row in packed[::-1])  # bottom row first, each 4 bytes already
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 16, 0, len(rows), 2835, 2835, 0, 0)
    path = tmp_path / "five.bmp"
    path.write_bytes(b"BM" + struct.pack("<IHHI", 14 + 40 + len(rows), 0, 0, 54) + info + rows)
    pixels = load_image(path)
    assert pixels.shape == (2, 2, 3)
    assert pixels[0, 0, 0] > 240 and pixels[0, 0, 1:].max() == 0


def test_a_truncated_file_is_refused_as_unreadable(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(np.random.default_rng(4).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(UnsupportedImageError, match="cannot read image"):
        load_image(path)


@pytest.mark.parametrize("name", ["moving.gif", "moving.png", "pages.tif"])
def test_only_the_first_frame_is_coded_and_the_rest_is_said(tmp_path, name):
    frames = [Image.fromarray(np.full((4, 5, 3), 60 * i, dtype=np.uint8)) for i in range(3)]
    path = tmp_path / name
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with pytest.warns(NotKeptWarning, match="first of the image's 3 frames"):
        pixels = load_image(path)
    assert np.array_equal(pixels, np.asarray(frames[0]))


@pytest.mark.parametrize("suffix", sorted(OUTPUT_FORMATS))
def test_every_output_format_holds_the_pixels_exactly(tmp_path, suffix):
    rng = np.random.default_rng(6)
    for pixels in (rng.integers(0, 256, (5, 7), dtype=np.uint8), rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)):
        path = tmp_path / f"out{suffix}"
        save_image(pixels, path, output_format(path))
        assert np.array_equal(load_image(path), pixels)


def test_a_lossy_output_suffix_is_refused():
    with pytest.raises(UnsupportedImageError, match="cannot write a .jpg file"):
        output_format("out.JPG")
    assert output_format("out") == "PNG"
