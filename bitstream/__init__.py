"""Bytes and entropy coding for .cdc files. Never imports torch.

- `container`: packs and parses the file format (docs/FORMAT.md); `describe`: what `info` prints.
- `entropy`: codes integer latents with constriction from fixed integer tables,
  chosen per symbol by the integer contexts of `contexts`.
- `residual`: codes the exact stages' integer residual (lossless, near-lossless).
- `ans`: the ANS word stream as bytes, and the checks every payload gets.
- `errors`: CdcFormatError, the only exception that parsing untrusted bytes raises.
"""

from .container import CdcFile, Header, StageInfo, StageKind, pack, truncate, unpack, unpack_header
from .describe import describe
from .entropy import SymbolTables, decode_latent, encode_latent, tables_from_counts
from .errors import CdcFormatError

__all__ = [
    "CdcFile",
    "CdcFormatError",
    "Header",
    "StageInfo",
    "StageKind",
    "SymbolTables",
    "decode_latent",
    "describe",
    "encode_latent",
    "pack",
    "tables_from_counts",
    "truncate",
    "unpack",
    "unpack_header",
]
