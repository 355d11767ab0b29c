"""cdcodec: a progressive learned image codec built on a cascade of residual decoders.

Library use::

    import cdcodec
    data = cdcodec.encode(pixels)            # uint8 (H, W, 3) / (H, W) array or PIL image -> .cdc bytes
    data = cdcodec.encode(pixels, quality=4) # quality level 0 .. cdcodec.quality_levels() - 1
    exact = cdcodec.encode(pixels, lossless=True)   # or max_error=D: every sample within D
    full = cdcodec.decode(data)              # every stage in the file
    thumb = cdcodec.decode(data, stages=1)   # just the coarse first stage
    cdcodec.describe(data)                   # header and per-stage sizes, without torch

`encode`/`decode` load the shipped default model on first use. The layers are
importable on their own: `cdcodec.bitstream` (container and entropy coding, no
torch), `cdcodec.codec` (networks, training, pipeline), `cdcodec.cli`.
"""

from __future__ import annotations

__version__ = "0.1.0"

# Attributes resolved on first use, so that `import cdcodec.bitstream` stays free of torch.
_LAZY = {
    "encode": ("cdcodec.codec.pipeline", "encode"),
    "decode": ("cdcodec.codec.pipeline", "decode"),
    "quality_levels": ("cdcodec.codec.pipeline", "quality_levels"),
    "load_image": ("cdcodec.codec.images", "load_image"),
    "describe": ("cdcodec.bitstream.describe", "describe"),
    "truncate": ("cdcodec.bitstream.container", "truncate"),
    "CdcFormatError": ("cdcodec.bitstream.errors", "CdcFormatError"),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cdcodec' has no attribute {name!r}")


def __dir__():
    return __all__
