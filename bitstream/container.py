"""The .cdc container: a self-describing header, then one checksummed section per stage.

The byte layout is documented in docs/FORMAT.md; this module is its single source.
All integers are little-endian.

A file is *progressive*: the header announces the stages the encoder wrote, and
the sections follow in stage order. Any prefix of a file that ends at a section
boundary (after at least one section) is itself a valid file that decodes to
fewer stages; `truncate()` produces such prefixes. A prefix that ends inside the
header or inside a section is rejected.

Nothing read from a file is trusted: every count and length is bounded before
it is used, and every failure raises CdcFormatError.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass

from .errors import CdcFormatError

MAGIC = b"\x89CDC"
#: 10: the post-filters are in the loop (stage k + 1 refines stage k's filtered image);
#: 9: the post-filter also reads the refine CNN's and the stage's shares; 8: every latent
#: stage's section starts with a post-filter block (bitstream/filters.py);
#: 7: smooth latent channels coded by prediction (bitstream/prediction.py);
#: 6: the exact stages' bias correction and compressed side information; 5: they
#: code red and blue as differences from green; 4: latents coded with checkerboard
#: contexts (docs/FORMAT.md). Every version but the current one is refused.
FORMAT_VERSION = 10
#: For each older version, the last commit of cdcodec's git history whose build reads
#: it (the commit before the next version's): the refusal names it, so an old file
#: can still be decoded with a checkout of that commit.
LAST_COMMIT_READING = {
    2: "b7919b5", 3: "31f8653", 4: "896b74e", 5: "c518bde", 6: "c5de4df", 7: "ce828c0", 8: "5aff9e1", 9: "df30f8f",
}

MAX_DIMENSION = 1 << 16
MAX_PIXELS = 1 << 28
MAX_STAGES = 16
MAX_MODEL_ID = 64
DIGEST_SIZE = 32

_FIXED = struct.Struct("<4sHIIBBB")  # magic, version, width, height, channels, bit depth, model id length
_STAGE = struct.Struct("<BH")  # kind, parameter
_SECTION = struct.Struct("<4sI")  # tag, payload length
_CRC = struct.Struct("<I")


class StageKind(enum.IntEnum):
    """What a stage's section holds."""

    LATENT = 1  #: an entropy-coded residual latent, decoded by a network
    LOSSLESS = 2  #: the exact integer residual to the original pixels
    NEAR_LOSSLESS = 3  #: the residual quantized so that no pixel errs by more than `param`


@dataclass(frozen=True)
class StageInfo:
    kind: StageKind
    param: int = 0  # LATENT: quality level (0 = the model's nominal one); NEAR_LOSSLESS: the maximum error

    def __post_init__(self) -> None:
        if not 0 <= self.param <= 0xFFFF:
            raise ValueError("stage parameter must fit in 16 bits")


@dataclass(frozen=True)
class Header:
    width: int
    height: int
    channels: int
    model_id: str
    weights_digest: bytes
    stages: tuple[StageInfo, ...]
    bit_depth: int = 8

    def __post_init__(self) -> None:
        if not (1 <= self.width <= MAX_DIMENSION and 1 <= self.height <= MAX_DIMENSION):
            raise ValueError(f"image size {self.width}x{self.height} out of range")
        if self.width * self.height > MAX_PIXELS:
            raise ValueError("image has too many pixels")
        if self.channels not in (1, 3):
            raise ValueError("channels must be 1 or 3")
        if self.bit_depth != 8:
            raise ValueError("only 8-bit images are supported")
        if len(self.weights_digest) != DIGEST_SIZE:
            raise ValueError("weights digest must be 32 bytes")
        encoded = self.model_id.encode("ascii")
        if not 1 <= len(encoded) <= MAX_MODEL_ID or not encoded.isascii():
            raise ValueError("model id must be 1-64 ASCII characters")
        if not 1 <= len(self.stages) <= MAX_STAGES:
            raise ValueError(f"a file holds 1-{MAX_STAGES} stages")


@dataclass(frozen=True)
class CdcFile:
    """A parsed file: the header and the payloads of the stages present."""

    header: Header
    payloads: tuple[bytes, ...]
    section_sizes: tuple[int, ...]  # bytes each stage occupies on disk, framing included
    header_size: int

    @property
    def stages_present(self) -> int:
        return len(self.payloads)


def stage_tag(index: int) -> bytes:
    """Section tag of the stage at 0-based `index`: b'STG' and the stage number."""
    return b"STG" + bytes([index + 1])


def pack_header(header: Header) -> bytes:
    model_id = header.model_id.encode("ascii")
    body = bytearray(
        _FIXED.pack(MAGIC, FORMAT_VERSION, header.width, header.height, header.channels, header.bit_depth, len(model_id))
    )
    body += model_id
    body += header.weights_digest
    body.append(len(header.stages))
    for stage in header.stages:
        body += _STAGE.pack(int(stage.kind), stage.param)
    body += _CRC.pack(zlib.crc32(body))
    return bytes(body)


def pack_section(index: int, payload: bytes) -> bytes:
    if len(payload) > 0xFFFFFFFF:
        raise ValueError("stage payload too large")
    head = _SECTION.pack(stage_tag(index), len(payload))
    return head + payload + _CRC.pack(zlib.crc32(head + payload))


def pack(header: Header, payloads: list[bytes] | tuple[bytes, ...]) -> bytes:
    """The whole file. `payloads` may be shorter than `header.stages` (a prefix)."""
    if not 1 <= len(payloads) <= len(header.stages):
        raise ValueError("need between one payload and one per announced stage")
    return pack_header(header) + b"".join(pack_section(i, p) for i, p in enumerate(payloads))


def unpack_header(data: bytes) -> tuple[Header, int]:
    """Parse and verify the header; return it with its size in bytes."""
    view = memoryview(data)
    if len(view) == 0:
        raise CdcFormatError("file is empty")
    if len(view) < 4 or bytes(view[:4]) != MAGIC:
        raise CdcFormatError("not a .cdc file (bad magic bytes)")
    if len(view) < _FIXED.size:
        raise CdcFormatError("file is truncated inside the header")
    magic, version, width, height, channels, bit_depth, id_len = _FIXED.unpack_from(view, 0)
    if version != FORMAT_VERSION:
        older = f"; cdcodec at git commit {LAST_COMMIT_READING[version]} reads it" if version in LAST_COMMIT_READING else ""
        raise CdcFormatError(f"unsupported .cdc format version {version} (this build reads {FORMAT_VERSION}{older})")
    if not 1 <= id_len <= MAX_MODEL_ID:
        raise CdcFormatError("header model id length out of range")
    pos = _FIXED.size
    need = pos + id_len + DIGEST_SIZE + 1
    if len(view) < need:
        raise CdcFormatError("file is truncated inside the header")
    model_bytes = bytes(view[pos : pos + id_len])
    pos += id_len
    digest = bytes(view[pos : pos + DIGEST_SIZE])
    pos += DIGEST_SIZE
    n_stages = view[pos]
    pos += 1
    if not 1 <= n_stages <= MAX_STAGES:
        raise CdcFormatError("header stage count out of range")
    end = pos + n_stages * _STAGE.size
    if len(view) < end + _CRC.size:
        raise CdcFormatError("file is truncated inside the header")
    (crc,) = _CRC.unpack_from(view, end)
    if crc != zlib.crc32(view[:end]):
        raise CdcFormatError("header checksum mismatch (file is corrupt)")
    stages = []
    for i in range(n_stages):
        kind, param = _STAGE.unpack_from(view, pos + i * _STAGE.size)
        try:
            stages.append(StageInfo(StageKind(kind), param))
        except ValueError:
            raise CdcFormatError(f"unknown stage kind {kind}") from None
    try:
        header = Header(
            width=width,
            height=height,
            channels=channels,
            model_id=model_bytes.decode("ascii"),
            weights_digest=digest,
            stages=tuple(stages),
            bit_depth=bit_depth,
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise CdcFormatError(f"invalid header: {exc}") from None
    return header, end + _CRC.size


def unpack(data: bytes) -> CdcFile:
    """Parse a whole file (or a stage-boundary prefix of one)."""
    header, pos = unpack_header(data)
    view = memoryview(data)
    payloads: list[bytes] = []
    sizes: list[int] = []
    while pos < len(view):
        index = len(payloads)
        if index >= len(header.stages):
            raise CdcFormatError("file has data after its last stage")
        if len(view) - pos < _SECTION.size:
            raise CdcFormatError(f"file is truncated inside stage {index + 1}")
        tag, length = _SECTION.unpack_from(view, pos)
        if tag != stage_tag(index):
            raise CdcFormatError(f"stage {index + 1} has a bad section tag")
        start = pos + _SECTION.size
        if length > len(view) - start - _CRC.size:
            raise CdcFormatError(f"file is truncated inside stage {index + 1}")
        end = start + length
        (crc,) = _CRC.unpack_from(view, end)
        if crc != zlib.crc32(view[pos:end]):
            raise CdcFormatError(f"stage {index + 1} checksum mismatch (file is corrupt)")
        payloads.append(bytes(view[start:end]))
        sizes.append(end + _CRC.size - pos)
        pos = end + _CRC.size
    if not payloads:
        raise CdcFormatError("file holds no stage data")
    return CdcFile(header=header, payloads=tuple(payloads), section_sizes=tuple(sizes), header_size=pos - sum(sizes))


def truncate(data: bytes, stages: int) -> bytes:
    """The prefix of `data` holding its first `stages` stages, byte for byte."""
    parsed = unpack(data)
    if not 1 <= stages <= parsed.stages_present:
        raise ValueError(f"can keep 1-{parsed.stages_present} stages, not {stages}")
    return bytes(data[: parsed.header_size + sum(parsed.section_sizes[:stages])])
