"""Images to .cdc bytes and back: the codec's public encode/decode.

encode: image -> uint8 array -> float tensor, padded to the block multiple ->
per-stage integer symbols (each stage's encoder sees what the decoder will
have) -> entropy-coded payloads -> container bytes.

decode: container bytes -> header checks (model id, weights digest, geometry)
-> payloads of the first k stages -> symbols -> reconstruction after stage k ->
crop -> uint8 array.

Grayscale images are coded as three equal channels and read back as their mean;
the header records one channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import torch

from ..bitstream import CdcFormatError, Header, StageInfo, StageKind, decode_latent, encode_latent, pack, unpack
from .geometry import crop_to, pad_to_multiple, padded_size
from .images import image_to_array
from .model import CascadeCodec, array_to_symbols, stage_prior, symbols_to_array
from .weights import ModelNotFoundError, load_codec, load_shipped


#: The quality level of a latent stage (the header's stage parameter). Models have
#: one level so far; the field lets later models offer several without a format change.
NOMINAL_QUALITY = 0


@dataclass(frozen=True)
class LoadedModel:
    codec: CascadeCodec
    digest: bytes


ModelSpec = Union[str, Path, "LoadedModel", None]


def get_model(model: ModelSpec = None) -> LoadedModel:
    """Resolve a model: a LoadedModel as given, a path to a weights file, or a shipped
    model id (the default model when None)."""
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, Path) or (isinstance(model, str) and model.endswith(".safetensors")):
        if not Path(model).is_file():
            raise ModelNotFoundError(f"weights file {model} does not exist")
        codec, digest = load_codec(model)
        return LoadedModel(codec, digest)
    codec, digest = load_shipped(model)
    return LoadedModel(codec, digest)


def encode(image, stages: int | None = None, model: ModelSpec = None) -> bytes:
    """Encode an image (PIL image or uint8 array) into the bytes of a .cdc file.

    `stages` limits how many cascade stages are written (all when None): fewer
    stages, fewer bytes, a coarser image.
    """
    loaded = get_model(model)
    codec = loaded.codec
    stages = codec.num_stages if stages is None else stages
    if not 1 <= stages <= codec.num_stages:
        raise ValueError(f"this model has stages 1-{codec.num_stages}, not {stages}")
    pixels = image_to_array(image)
    height, width = pixels.shape[:2]
    x = _to_tensor(pixels, codec.config.multiple)
    payloads = []
    previous = None
    for index, q in enumerate(codec.analyse(x, stages)):
        prior = stage_prior(previous, tuple(q.shape[-2:]), q.shape[1])
        payloads.append(encode_latent(symbols_to_array(q), codec.tables_for(index), prior))
        previous = q
    header = Header(
        width=width,
        height=height,
        channels=1 if pixels.ndim == 2 else 3,
        model_id=codec.config.model_id,
        weights_digest=loaded.digest,
        stages=tuple(StageInfo(StageKind.LATENT, NOMINAL_QUALITY) for _ in range(stages)),
    )
    return pack(header, payloads)


def decode(data: bytes, stages: int | None = None, model: ModelSpec = None) -> np.ndarray:
    """Decode .cdc bytes to a uint8 array, (H, W) or (H, W, 3), after `stages` stages (all present when None)."""
    parsed = unpack(data)
    header = parsed.header
    loaded = _model_for(header, model)
    codec = loaded.codec
    stages = parsed.stages_present if stages is None else stages
    if not 1 <= stages <= parsed.stages_present:
        raise ValueError(f"file has stages 1-{parsed.stages_present}, cannot decode {stages}")
    for index, info in enumerate(header.stages[:stages]):
        if info.kind != StageKind.LATENT or index >= codec.num_stages:
            raise CdcFormatError(f"stage {index + 1} is of a kind this model cannot decode")
        if info.param != NOMINAL_QUALITY:
            raise CdcFormatError(f"stage {index + 1} uses quality level {info.param}, which this model does not have")
    ph, pw = padded_size(header.height, header.width, codec.config.multiple)
    symbols = []
    for index in range(stages):
        block = codec.stages[index].config.block
        lh, lw = ph // block, pw // block
        prior = stage_prior(symbols[-1] if symbols else None, (lh, lw), codec.stages[index].latent_channels)
        arr = decode_latent(parsed.payloads[index], codec.tables_for(index), lh * lw, prior)
        symbols.append(array_to_symbols(arr, lh, lw))
    like = torch.zeros(1, 3, ph, pw)
    recon = codec.synthesise(symbols, like)[-1]
    return _to_pixels(crop_to(recon, header.height, header.width), header.channels)


def _model_for(header: Header, model: ModelSpec) -> LoadedModel:
    if model is None:
        model = header.model_id
    try:
        loaded = get_model(model)
    except LookupError as exc:
        raise CdcFormatError(f"file needs model {header.model_id!r}: {exc}") from None
    if loaded.codec.config.model_id != header.model_id or loaded.digest != header.weights_digest:
        raise CdcFormatError(
            f"file was made with model {header.model_id!r} (weights {header.weights_digest.hex()[:12]}), "
            f"which is not the model available here ({loaded.codec.config.model_id!r}, {loaded.digest.hex()[:12]})"
        )
    return loaded


def _to_tensor(pixels: np.ndarray, multiple: int) -> torch.Tensor:
    rgb = np.repeat(pixels[:, :, None], 3, axis=2) if pixels.ndim == 2 else np.array(pixels)
    x = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).float() / 255.0
    return pad_to_multiple(x, multiple)


def _to_pixels(x: torch.Tensor, channels: int) -> np.ndarray:
    x = x[0]
    if channels == 1:
        x = x.mean(dim=0, keepdim=True)
    arr = torch.round(x.clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).numpy()
    return arr[:, :, 0].copy() if channels == 1 else np.ascontiguousarray(arr)
