"""Baseline codecs behind one small interface, so the runner never special-cases a format.

Every adapter turns an RGB ``uint8`` array of shape (H, W, 3) into bytes at one
*setting* (the codec's own quality knob) and turns those bytes back into an array.
The settings lists are sweeps chosen to span roughly 0.1-2 bits per pixel on
photographs (and a little beyond, so that curves overlap at both ends).

Encoder choices that change results are pinned here rather than left to library
defaults, because defaults drift between releases and the benchmark must be
reproducible:

- JPEG (Pillow/libjpeg-turbo): ``optimize=True`` (optimal Huffman tables; changes
  only the size, never the pixels), chroma 4:2:0 or 4:4:4 explicitly.
- WebP lossy (Pillow/libwebp): ``method=6`` (slowest, best); lossy WebP is always 4:2:0.
- JPEG 2000 (imagecodecs/OpenJPEG): the setting is OpenJPEG's target PSNR in dB
  (irreversible 9/7 wavelet, colour transform on).
- AVIF (imagecodecs/libavif): quality 0-100, ``speed=6``, 4:4:4, one thread.
- JPEG XL (imagecodecs/libjxl): the setting is the butteraugli ``distance``
  (the knob libjxl documents; quality maps onto it anyway), ``effort=7``, one thread.
- PNG (Pillow): ``optimize=True``; WebP lossless (Pillow): ``quality=75, method=4``
  (cwebp's default effort; on skimage's astronaut, quality 100 with method 6 gave a
  4% smaller file but took about 8 times as long);
  JPEG XL lossless: ``effort=7``; JPEG-LS (imagecodecs/CharLS): NEAR=0 for lossless,
  NEAR=D for near-lossless (every sample within D of the original).

A codec whose library is missing is not an error: ``Codec.unavailable()`` says why,
and the runner lists it as skipped.
"""

from __future__ import annotations

import importlib
import io
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from .points import Encoded, timed

Setting = int | float | str

LOSSY = "lossy"
LOSSLESS = "lossless"
NEAR_LOSSLESS = "near-lossless"


@dataclass(frozen=True)
class Codec:
    """One baseline codec: how to encode at a setting, how to decode, which settings to sweep.

    `library` is the importable module the codec needs and `feature` (optional) the
    attribute of that module whose ``.available`` flag says whether this build has
    the format compiled in (imagecodecs builds vary).
    """

    name: str
    label: str
    kind: str
    setting_name: str
    settings: tuple[Setting, ...]
    encode: Callable[[np.ndarray, Setting], bytes]
    decode: Callable[[bytes], np.ndarray]
    library: str = "PIL"
    feature: str | None = None
    params: dict = field(default_factory=dict)

    def points(self, image: np.ndarray):
        """Yield one `Encoded` per setting, in the order of `settings`."""
        return codec_points(self, image)

    def unavailable(self) -> str | None:
        """None if the codec can run here, otherwise a short human reason."""
        try:
            module = importlib.import_module(self.library)
        except ImportError:
            return f"{self.library} not installed; pip install 'cdcodec[bench]'"
        if self.feature is not None:
            flag = getattr(module, self.feature, None)
            if flag is None or not getattr(flag, "available", False):
                return f"{self.library} {getattr(module, '__version__', '')} built without {self.feature}".replace("  ", " ")
        return None


# --- Pillow --------------------------------------------------------------------------


def _pil_save(image: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image, mode="RGB").save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _pil_load(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _jpeg(subsampling: int) -> Callable[[np.ndarray, Setting], bytes]:
    # Pillow's subsampling codes: 0 = 4:4:4, 2 = 4:2:0.
    return lambda image, q: _pil_save(image, "JPEG", quality=int(q), subsampling=subsampling, optimize=True)


def _webp_lossy(image: np.ndarray, q: Setting) -> bytes:
    return _pil_save(image, "WEBP", quality=int(q), method=6)


def _webp_lossless(image: np.ndarray, _: Setting) -> bytes:
    return _pil_save(image, "WEBP", lossless=True, quality=75, method=4)


def _png(image: np.ndarray, _: Setting) -> bytes:
    return _pil_save(image, "PNG", optimize=True)


# --- imagecodecs (imported lazily: it is an optional extra) --------------------------


def _ic():
    return importlib.import_module("imagecodecs")


def _rgb(array: np.ndarray) -> np.ndarray:
    """Decoders may hand back extra alpha or a squeezed grey plane; normalise to HxWx3 uint8."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    return np.ascontiguousarray(array[:, :, :3].astype(np.uint8, copy=False))


def _jpeg2k_encode(image: np.ndarray, target_psnr: Setting) -> bytes:
    return bytes(_ic().jpeg2k_encode(image, level=float(target_psnr), numthreads=1))


def _avif_encode(image: np.ndarray, q: Setting) -> bytes:
    ic = _ic()
    return bytes(ic.avif_encode(image, level=int(q), speed=6, pixelformat=ic.AVIF.PIXEL_FORMAT.YUV444, numthreads=1))


def _jpegxl_encode(image: np.ndarray, distance: Setting) -> bytes:
    return bytes(_ic().jpegxl_encode(image, distance=float(distance), effort=7, numthreads=1))


def _jpegxl_lossless(image: np.ndarray, _: Setting) -> bytes:
    return bytes(_ic().jpegxl_encode(image, lossless=True, effort=7, numthreads=1))


def _jpegls_encode(image: np.ndarray, near: Setting) -> bytes:
    return bytes(_ic().jpegls_encode(image, level=int(near)))


def _decoder(function: str) -> Callable[[bytes], np.ndarray]:
    return lambda data: _rgb(getattr(_ic(), function)(data))


# --- the registry --------------------------------------------------------------------

# About a dozen points per codec: enough for smooth curves and BD-rates over 0.1-2 bpp,
# few enough that a Kodak run stays well under an hour on a small shared machine
# (SSIM and MS-SSIM of each point cost more than most encodes).
JPEG_QUALITIES = (2, 5, 10, 15, 25, 35, 50, 65, 75, 85, 90, 95)

BASELINES: tuple[Codec, ...] = (
    Codec("jpeg420", "JPEG 4:2:0", LOSSY, "quality", JPEG_QUALITIES, _jpeg(2), _pil_load,
          params={"library": "Pillow", "optimize": True, "subsampling": "4:2:0"}),
    Codec("jpeg444", "JPEG 4:4:4", LOSSY, "quality", JPEG_QUALITIES, _jpeg(0), _pil_load,
          params={"library": "Pillow", "optimize": True, "subsampling": "4:4:4"}),
    Codec("webp", "WebP", LOSSY, "quality", (0, 10, 25, 40, 55, 70, 80, 88, 95, 100),
          _webp_lossy, _pil_load, params={"library": "Pillow", "method": 6}),
    Codec("jpeg2000", "JPEG 2000", LOSSY, "target PSNR (dB)", (22, 25, 28, 31, 34, 37, 40, 43, 46),
          _jpeg2k_encode, _decoder("jpeg2k_decode"), "imagecodecs", "JPEG2K",
          params={"library": "imagecodecs (OpenJPEG)", "wavelet": "9/7 irreversible"}),
    Codec("avif", "AVIF", LOSSY, "quality", (0, 10, 20, 30, 40, 50, 60, 70, 80, 88, 94),
          _avif_encode, _decoder("avif_decode"), "imagecodecs", "AVIF",
          params={"library": "imagecodecs (libavif)", "speed": 6, "pixelformat": "4:4:4"}),
    Codec("jpegxl", "JPEG XL", LOSSY, "distance", (25, 15, 10, 6.5, 4.5, 3, 2, 1.4, 1, 0.7, 0.45),
          _jpegxl_encode, _decoder("jpegxl_decode"), "imagecodecs", "JPEGXL",
          params={"library": "imagecodecs (libjxl)", "effort": 7}),
    Codec("png", "PNG", LOSSLESS, "-", ("lossless",), _png, _pil_load,
          params={"library": "Pillow", "optimize": True}),
    Codec("webp-lossless", "WebP lossless", LOSSLESS, "-", ("lossless",), _webp_lossless, _pil_load,
          params={"library": "Pillow", "quality": 75, "method": 4}),
    Codec("jpegxl-lossless", "JPEG XL lossless", LOSSLESS, "-", ("lossless",), _jpegxl_lossless,
          _decoder("jpegxl_decode"), "imagecodecs", "JPEGXL", params={"library": "imagecodecs (libjxl)", "effort": 7}),
    Codec("jpegls", "JPEG-LS", LOSSLESS, "NEAR", (0,), _jpegls_encode, _decoder("jpegls_decode"),
          "imagecodecs", "JPEGLS", params={"library": "imagecodecs (CharLS)"}),
    Codec("jpegls-near", "JPEG-LS near-lossless", NEAR_LOSSLESS, "NEAR (max error D)", (1, 2), _jpegls_encode,
          _decoder("jpegls_decode"), "imagecodecs", "JPEGLS", params={"library": "imagecodecs (CharLS)"}),
)


def baseline(name: str) -> Codec:
    """Look a baseline codec up by its command-line name."""
    for codec in BASELINES:
        if codec.name == name:
            return codec
    raise KeyError(name)


def names(codecs: Sequence[Codec]) -> list[str]:
    return [codec.name for codec in codecs]


def codec_points(codec: Codec, image: np.ndarray):
    """Yield an `Encoded` for each of the codec's settings: one encode and one decode each."""
    for setting in codec.settings:
        data, encode_s = timed(codec.encode, image, setting)
        decoded, decode_s = timed(codec.decode, data)
        yield Encoded(setting, data, decoded, encode_s, decode_s)
