"""Reading user images into the 8-bit arrays the codec works on, and writing them back
(in a lossless format, `OUTPUT_FORMATS`).

The codec codes 8-bit grayscale and 8-bit RGB. Other inputs are converted only
where the conversion loses nothing (palette to RGB, bilevel to grayscale, an
alpha channel that is fully opaque); anything else is refused with a clear
message rather than silently changed.

What a file carries besides one frame of pixels:
- An EXIF orientation (cameras and phones store the sensor's rows and a tag
  saying how to turn them). The pixels are turned as the tag says, a lossless
  permutation, so the decoded image, which carries no tag, looks like the original.
- An ICC colour profile. A .cdc file carries none, and a decoded image is read as
  sRGB; a profile that is not sRGB (Display P3 from phones, Adobe RGB) would
  change the colours without a word, so it raises `NotKeptWarning`.
- More frames (an animation, a multi-page TIFF): the first is coded, and the
  others raise `NotKeptWarning`.
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

EXIF_ORIENTATION = 0x0112

# Pillow's raw modes of samples wider than 8 bits that it decodes into an 8-bit mode
# (a 16-bit RGB PNG or TIFF opens as "RGB", a 16-bit RGBA or gray-alpha PNG as "RGBA"),
# cutting every sample to its top 8 bits. "BGR;16" and "BGR;15" are 16-bit BMP pixels,
# 5 or 6 bits per sample, and do not match.
_DEEP_RAW_MODE = re.compile(r"(RGBA?|RGBX|LA|L|I);(16|32)")


class UnsupportedImageError(ValueError):
    """An input the codec cannot code without losing information, or an output it does not write."""


class NotKeptWarning(UserWarning):
    """The input carries something that changes what it shows and that a .cdc file does not keep
    (a colour profile other than sRGB, more frames): its first frame's pixels are coded as they are."""


def load_image(path: str | Path) -> np.ndarray:
    """Read any Pillow-readable file as uint8 (H, W) grayscale or (H, W, 3) RGB."""
    try:
        with Image.open(path) as img:
            return image_to_array(img)  # decodes the file, so its errors are caught here too
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise UnsupportedImageError(f"cannot read image {path}: {exc}") from None


def image_to_array(image) -> np.ndarray:
    """Accept a PIL image or a numpy array; return uint8 (H, W) or (H, W, 3)."""
    if isinstance(image, Image.Image):
        return _pil_to_array(image)
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise UnsupportedImageError(f"expected uint8 pixels, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = _drop_opaque_alpha(arr)
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise UnsupportedImageError(f"expected an (H, W) or (H, W, 3) image, got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise UnsupportedImageError("image is empty")
    return np.ascontiguousarray(arr)


def _pil_to_array(img: Image.Image) -> np.ndarray:
    _refuse_deep_samples(img)  # first: reading a PNG's EXIF decodes it, and then its raw mode is gone
    frames, icc = getattr(img, "n_frames", 1), img.info.get("icc_profile")
    if exif_orientation(img) != 1:
        img = ImageOps.exif_transpose(img)  # a turned copy: the caller's image stays as it was
    pixels = _mode_to_array(img)
    # Warnings only for an image that will be coded, pointing at the caller of load_image or pipeline.encode:
    profile = _profile_not_srgb(icc)
    if profile:
        warnings.warn(NotKeptWarning(f"the image's colour profile ({profile}) is not kept: the decoded image is read as sRGB"), stacklevel=4)
    if frames > 1:
        warnings.warn(NotKeptWarning(f"only the first of the image's {frames} frames is coded"), stacklevel=4)
    return pixels


def _mode_to_array(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("RGB", "L"):
        return image_to_array(np.asarray(img))
    if mode == "1":
        return image_to_array(np.asarray(img.convert("L")))
    if mode == "P":
        has_alpha = "transparency" in img.info or img.palette is not None and img.palette.mode == "RGBA"
        return image_to_array(np.asarray(img.convert("RGBA" if has_alpha else "RGB")))
    if mode in ("RGBA", "LA", "PA"):
        converted = np.asarray(img.convert("RGBA"))
        rgb = _drop_opaque_alpha(converted)
        if mode == "LA" and (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all():
            return rgb[..., 0].copy()
        return rgb
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        raise UnsupportedImageError(f"{mode} images (more than 8 bits per sample) are not supported")
    raise UnsupportedImageError(f"image mode {mode} is not supported (use 8-bit RGB or grayscale)")


def exif_orientation(img: Image.Image) -> int:
    """The EXIF orientation tag, 1 (as stored) where there is none or the EXIF block is corrupt:
    a viewer shows such a file unturned, and its pixels are what the user sees."""
    try:
        return int(img.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # Pillow's EXIF parser raises SyntaxError, struct.error, ... on broken blocks
        return 1


def _refuse_deep_samples(img: Image.Image) -> None:
    """Refuse a file whose samples are wider than 8 bits even where Pillow opens it in an 8-bit
    mode: coding its cut samples would change it silently, and `--lossless` would not be.
    Seen only before the image is decoded (its tiles are dropped then)."""
    for tile in getattr(img, "tile", ()):  # only a file opened and not yet decoded has tiles
        args = tile[3]
        raw_mode = args if isinstance(args, str) else next(iter(args or ()), None)
        found = _DEEP_RAW_MODE.match(raw_mode) if isinstance(raw_mode, str) else None
        if found:
            raise UnsupportedImageError(f"{found.group(2)}-bit images (more than 8 bits per sample) are not supported")


def profile_description(icc: bytes | None) -> str | None:
    """An embedded ICC profile's description ("unreadable" for a broken one), None for none."""
    if not icc:
        return None
    try:
        from PIL import ImageCms  # needs Pillow's littlecms, which its wheels include
    except ImportError:
        return "unread: this Pillow has no ImageCms"
    try:
        return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()
    except (ImageCms.PyCMSError, OSError, ValueError):
        return "unreadable"


def _profile_not_srgb(icc: bytes | None) -> str | None:
    """The description of an embedded ICC profile that is not sRGB, None for none or sRGB (judged
    by the description, as the profiles' own names are the only thing sRGB profiles from
    different makers share)."""
    description = profile_description(icc)
    return None if description is None or "srgb" in description.lower() else description


def _drop_opaque_alpha(rgba: np.ndarray) -> np.ndarray:
    if (rgba[..., 3] != 255).any():
        raise UnsupportedImageError("images with transparency are not supported (alpha channel is not opaque)")
    return np.ascontiguousarray(rgba[..., :3])


# The formats a decoded image is written in, by the output's suffix: all lossless, so the
# file holds exactly the decoded pixels (a .cdc decoded to JPEG or WebP would be coded twice).
# A name without a suffix gets PNG. Netpbm is written as P6 for colour and P5 for gray.
OUTPUT_FORMATS = {".png": "PNG", ".bmp": "BMP", ".ppm": "PPM", ".pnm": "PPM", ".tif": "TIFF", ".tiff": "TIFF"}


def output_format(path: str | Path) -> str:
    """The format `save_image` writes to `path`; a clear error for a suffix it does not write,
    checked before decoding so that nothing is written."""
    suffix = Path(path).suffix.lower()
    if not suffix:
        return "PNG"
    if suffix not in OUTPUT_FORMATS:
        known = ", ".join(OUTPUT_FORMATS)
        raise UnsupportedImageError(f"cannot write a {suffix} file: decoded images are written lossless, as {known}")
    return OUTPUT_FORMATS[suffix]


def save_image(array: np.ndarray, path: str | Path, image_format: str = "PNG") -> None:
    """Write uint8 (H, W) or (H, W, 3) pixels in `image_format` (one of OUTPUT_FORMATS' values)."""
    Image.fromarray(array).save(path, format=image_format)
