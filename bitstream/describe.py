"""A plain description of a .cdc file (what `cdcodec info` prints), without decoding it."""

from __future__ import annotations

from .container import StageKind, unpack
from .filters import split_latent_section


def describe(data: bytes) -> dict:
    """Header fields and the size of every stage present, as JSON-ready values."""
    parsed = unpack(data)
    header = parsed.header
    pixels = header.width * header.height
    stages = []
    cumulative = parsed.header_size
    for index, info in enumerate(header.stages):
        present = index < parsed.stages_present
        entry = {"stage": index + 1, "kind": info.kind.name.lower(), "param": info.param, "present": present}
        if present:
            size = parsed.section_sizes[index]
            cumulative += size
            entry.update(bytes=size, payload_bytes=len(parsed.payloads[index]), cumulative_bytes=cumulative,
                         cumulative_bpp=round(8 * cumulative / pixels, 5))
            if info.kind == StageKind.LATENT:
                payload = parsed.payloads[index]
                post_filter, latent, tempered = split_latent_section(payload)
                entry.update(post_filter=post_filter.mode.name.lower(), post_filter_bytes=len(payload) - len(latent),
                             tempered_tables=tempered)
        stages.append(entry)
    return {
        "width": header.width,
        "height": header.height,
        "channels": header.channels,
        "bit_depth": header.bit_depth,
        "model_id": header.model_id,
        "weights_sha256": header.weights_digest.hex(),
        "stages_announced": len(header.stages),
        "stages_present": parsed.stages_present,
        "header_bytes": parsed.header_size,
        "file_bytes": len(data),
        "bpp": round(8 * len(data) / pixels, 5),
        "stages": stages,
    }
