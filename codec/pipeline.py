"""Images to .cdc bytes and back: the codec's public encode/decode.

encode: image -> uint8 array -> float tensor, padded to the block multiple ->
per-stage integer symbols (each stage's encoder sees what the decoder will
have; rounded, then searched for a better rate-distortion trade-off,
`symbol_search.py`) and, per stage, a post-filter fitted to its reconstruction
(`postfilter.py`) -> the entropy-coded symbols -> container bytes.

decode: container bytes -> header checks (model id, weights digest, geometry)
-> payloads of the first k stages -> symbols -> images stage by stage -> crop
-> stage k's post-filter -> uint8 array.

The post-filters are in the loop (format 10): stage k's filter is applied to
its reconstruction before stage k + 1 refines it, as well as to the image a
decode of k stages shows, so every later stage starts from the better image
(`_InLoopFilter`).

An exact stage (lossless or near-lossless, `exact.py`) may follow the lossy
stages; decoding it needs only the lossy stages' integer symbols, never their
float reconstruction, so it gives the same pixels on every machine.

Grayscale images are coded as three equal channels and read back as their mean;
the header records one channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union

import numpy as np
import torch

from ..bitstream import CdcFile, CdcFormatError, Header, StageInfo, StageKind, decode_latent, encode_latent, pack, unpack
from ..bitstream.entropy import choose_temperatures, move_bits
from ..bitstream.filters import NO_FILTER, FilterMode, PostFilter, join_latent_section, split_latent_section
from ..bitstream.residual import decode_residual, encode_residual, pixel_checksum
from . import exact, postfilter, symbol_search
from .geometry import crop_to, pad_to_multiple, padded_size
from .images import image_to_array
from .model import CascadeCodec, StageImages, array_to_symbols, stage_prior, symbols_to_array
from .networks import lambda_for_step
from .weights import ModelNotFoundError, load_codec, load_shipped, trained_ms_ssim_share


#: Largest maximum error a near-lossless stage accepts.
MAX_ERROR_LIMIT = 64

#: Rounds of symbol search per stage (`symbol_search.py`) a lossy encode runs unless told otherwise.
DEFAULT_SEARCH_ROUNDS = 4
#: Pictures larger than this are not searched unless asked to: the search keeps the refine
#: CNN's activations for its gradient (about 32 floats per pixel and layer), which for a
#: 12-megapixel photo would come, by that count (not measured), to over 10 GB.
SEARCH_DEFAULT_MAX_PIXELS = 4_000_000

#: What the encoder's symbol search may weigh as distortion (`encode(tune=...)`, `cdcodec encode --tune`):
#: the mix the model was trained for, or squared error alone (fewer bits at equal PSNR).
TUNINGS = ("model", "psnr")


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


def quality_levels(model: ModelSpec = None) -> int:
    """How many quality levels the model offers (valid `quality` values are 0 .. n-1)."""
    return len(get_model(model).codec.config.qualities)


def encode(
    image,
    stages: int | None = None,
    model: ModelSpec = None,
    lossless: bool = False,
    max_error: int | None = None,
    quality: int | None = None,
    post_filters: bool | None = None,
    search_rounds: int | None = None,
    search_ms_ssim_share: float | None = None,
    tune: str = "model",
    temper: bool = True,
) -> bytes:
    """Encode an image (PIL image or uint8 array) into the bytes of a .cdc file.

    `stages` limits how many lossy cascade stages are written (all when None):
    fewer stages, fewer bytes, a coarser image. `lossless` adds a final stage
    that makes the file decode to exactly the original; `max_error=D` adds one
    that makes every decoded sample lie within D of the original. `quality`
    picks one of the model's quality levels (0 = coarsest; default: the level
    the model was trained at): each stage's quantizer step scales with it.
    `post_filters` decides whether the lossy stages may carry an adaptive
    post-filter (`postfilter.py`; the encoder sends one only where it pays for
    its bits at the stage's rate-distortion trade-off, and later stages refine
    the filtered image). By default they may, unless an exact stage follows: a
    lossless or near-lossless file is judged by its size, and its decoder does
    not use them (only a decode of fewer stages would). `search_rounds` is how
    many rounds the encoder searches each stage's symbols for a better
    rate-distortion trade-off than rounding (`symbol_search.py`): more rounds,
    a slower encode, the same decoder. By default DEFAULT_SEARCH_ROUNDS, unless
    an exact stage follows (the search weighs the lossy stages' own distortion,
    not the size of the exact stage after them) or the picture has more than
    SEARCH_DEFAULT_MAX_PIXELS (its memory); 0 rounds every latent value.
    The search's distortion mixes 1 − MS-SSIM into squared error by
    `search_ms_ssim_share`; by default by the share the model was trained with
    (`weights.trained_ms_ssim_share`, `tune="model"`); `tune="psnr"` makes it 0,
    squared error alone (`cdcodec encode --tune psnr`). The share itself is for
    experiments with other mixes (scripts/symbol_search_probe.py and
    scripts/searched_tables_probe.py). `temper` (the default) lets each latent
    stage re-shape its tables per channel for the image where that saves bits
    (`bitstream.temper`); its symbols and pixels are the same either way, and
    temper=False writes files that builds from before session 60 can read.
    """
    loaded = get_model(model)
    codec = loaded.codec
    stages = codec.num_stages if stages is None else stages
    if not 1 <= stages <= codec.num_stages:
        raise ValueError(f"this model has stages 1-{codec.num_stages}, not {stages}")
    quality = codec.config.nominal_quality if quality is None else quality
    codec.scale(quality)  # validates the level
    if lossless and max_error is not None:
        raise ValueError("choose either lossless or a maximum error, not both")
    if max_error is not None and not 1 <= max_error <= MAX_ERROR_LIMIT:
        raise ValueError(f"maximum error must be 1-{MAX_ERROR_LIMIT}")
    if search_rounds is not None and search_rounds < 0:
        raise ValueError("search rounds must be 0 or more")
    if tune not in TUNINGS:
        raise ValueError(f"tune must be one of {', '.join(TUNINGS)}, not {tune!r}")
    if tune == "psnr":
        if search_ms_ssim_share not in (None, 0.0):
            raise ValueError("tune='psnr' searches squared error alone: leave search_ms_ssim_share unset")
        search_ms_ssim_share = 0.0
    pixels = image_to_array(image)
    height, width = pixels.shape[:2]
    if search_rounds is None:
        searched = not lossless and max_error is None and height * width <= SEARCH_DEFAULT_MAX_PIXELS
        search_rounds = DEFAULT_SEARCH_ROUNDS if searched else 0
    channels = 1 if pixels.ndim == 2 else 3
    if post_filters is None:
        post_filters = not lossless and max_error is None
    rgb = _as_rgb(pixels)
    x = _to_tensor(rgb, codec.config.multiple)
    loop = None
    if post_filters:
        loop = _InLoopFilter(height, width, lambda index, inputs: _choose_filter(codec, index, quality, inputs, rgb))
    search = None
    if search_rounds:
        if search_ms_ssim_share is None:
            search_ms_ssim_share = trained_ms_ssim_share(codec.config.model_id)
        search = _RateSearch(codec, quality, (height, width), search_rounds, search_ms_ssim_share)
    payloads, arrays = [], []
    previous = None
    for index, q in enumerate(codec.analyse(x, stages, quality, loop_filter=loop, search=search)):
        prior = stage_prior(previous, tuple(q.shape[-2:]), q.shape[1])
        arrays.append(symbols_to_array(q))
        tables, grid = codec.tables_for(index, quality), tuple(q.shape[-2:])
        temperatures = choose_temperatures(tables, arrays[-1], prior, grid) if temper else None
        latent = encode_latent(arrays[-1], tables, prior, grid, temperatures)
        payloads.append(join_latent_section(loop.filters[index] if loop else NO_FILTER, latent, temper))
        previous = q
    infos = [StageInfo(StageKind.LATENT, quality) for _ in range(stages)]
    levels = [quality] * stages
    if lossless or max_error is not None:
        bound = 0 if lossless else max_error
        preview = _preview(codec, arrays, levels, height, width, channels)
        original = pixels.reshape(height, width, channels).astype(np.int64)
        quantized = exact.quantize_residual(original - preview, bound)
        final = exact.reconstruct(preview, quantized, bound)
        checksum = pixel_checksum(final)
        payloads.append(encode_residual(quantized, preview, bound, checksum))
        infos.append(StageInfo(StageKind.LOSSLESS, 0) if lossless else StageInfo(StageKind.NEAR_LOSSLESS, bound))
    header = Header(
        width=width,
        height=height,
        channels=channels,
        model_id=codec.config.model_id,
        weights_digest=loaded.digest,
        stages=tuple(infos),
    )
    return pack(header, payloads)


def decode(data: bytes, stages: int | None = None, model: ModelSpec = None) -> np.ndarray:
    """Decode .cdc bytes to a uint8 array, (H, W) or (H, W, 3), after `stages` stages (all present when None).

    When the stages decoded include an exact (lossless or near-lossless) stage,
    the result is exact and its checksum is verified.
    """
    parsed = unpack(data)
    header = parsed.header
    loaded = _model_for(header, model)
    codec = loaded.codec
    stages = parsed.stages_present if stages is None else stages
    if not 1 <= stages <= parsed.stages_present:
        raise ValueError(f"file has stages 1-{parsed.stages_present}, cannot decode {stages}")
    latent_stages = _check_stage_plan(header, codec)
    ph, pw = padded_size(header.height, header.width, codec.config.multiple)
    levels = [info.param for info in header.stages[:latent_stages]]
    arrays, symbols, filters = read_latent_stages(parsed, codec, min(stages, latent_stages))
    if stages > latent_stages:
        return _decode_exact(codec, header, arrays, levels, parsed.payloads[latent_stages])
    loop = _InLoopFilter(header.height, header.width, lambda index, inputs: filters[index])
    codec.synthesise_images(symbols, torch.zeros(1, 3, ph, pw), levels[: len(symbols)], loop_filter=loop)
    return _to_pixels(loop.shown, header.channels)


def read_latent_stages(parsed: CdcFile, codec: CascadeCodec, count: int) -> tuple[list[np.ndarray], list[torch.Tensor], list[PostFilter]]:
    """The first `count` latent stages of a parsed file, as the decoder reads them: each
    stage's symbols as the coder's (C, N) array and as a (1, C, h, w) tensor, and its
    post-filter. Each stage's coding contexts depend on the stage before it, so they
    are read in order. Measurements that need a file's symbols read them here too."""
    header = parsed.header
    ph, pw = padded_size(header.height, header.width, codec.config.multiple)
    arrays, symbols, filters = [], [], []
    for index in range(count):
        block = codec.stages[index].config.block
        lh, lw = ph // block, pw // block
        prior = stage_prior(symbols[-1] if symbols else None, (lh, lw), codec.stages[index].latent_channels)
        tables = codec.tables_for(index, header.stages[index].param)
        post_filter, latent, tempered = split_latent_section(parsed.payloads[index])
        filters.append(post_filter)
        arrays.append(decode_latent(latent, tables, lh * lw, prior, (lh, lw), tempered))
        symbols.append(array_to_symbols(arrays[-1], lh, lw))
    return arrays, symbols, filters


def _check_stage_plan(header: Header, codec: CascadeCodec) -> int:
    """Validate the announced stages against the model; return how many are lossy latents."""
    latent = 0
    for index, info in enumerate(header.stages):
        if info.kind == StageKind.LATENT:
            if latent != index or index >= codec.num_stages:
                raise CdcFormatError(f"stage {index + 1} is a latent stage this model cannot decode")
            if info.param >= len(codec.config.qualities) or info.param not in codec.tables[index]:
                raise CdcFormatError(f"stage {index + 1} uses quality level {info.param}, which this model does not have")
            latent += 1
        elif index != len(header.stages) - 1 or index == 0:
            raise CdcFormatError("an exact stage must be the last stage and follow at least one lossy stage")
        elif info.kind == StageKind.LOSSLESS and info.param != 0:
            raise CdcFormatError("lossless stage has a nonzero parameter")
        elif info.kind == StageKind.NEAR_LOSSLESS and not 1 <= info.param <= MAX_ERROR_LIMIT:
            raise CdcFormatError("near-lossless stage has an out-of-range maximum error")
    return latent


def _decode_exact(codec: CascadeCodec, header: Header, arrays: list[np.ndarray], levels: list[int], payload: bytes) -> np.ndarray:
    info = header.stages[-1]
    bound = info.param if info.kind == StageKind.NEAR_LOSSLESS else 0
    preview = _preview(codec, arrays, levels, header.height, header.width, header.channels)
    quantized, checksum = decode_residual(payload, preview, bound)
    final = exact.reconstruct(preview, quantized, bound)
    if pixel_checksum(final) != checksum:
        raise CdcFormatError("decoded pixels do not match the file's checksum (corrupt file or a decoder bug)")
    return final[:, :, 0].copy() if header.channels == 1 else final


def _preview(codec: CascadeCodec, arrays: list[np.ndarray], levels: list[int], height: int, width: int, channels: int) -> np.ndarray:
    ph, pw = padded_size(height, width, codec.config.multiple)
    scales = [codec.scale(level) for level in levels]
    rgb = exact.exact_preview(codec, arrays, scales, ph, pw)[:height, :width]
    return exact.to_channels(rgb, channels)


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


def _as_rgb(pixels: np.ndarray) -> np.ndarray:
    """A uint8 image as H×W×3: grayscale is coded as three equal channels."""
    return np.repeat(pixels[:, :, None], 3, axis=2) if pixels.ndim == 2 else pixels


def _to_tensor(pixels: np.ndarray, multiple: int) -> torch.Tensor:
    rgb = np.array(_as_rgb(pixels))
    x = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).float() / 255.0
    return pad_to_multiple(x, multiple)


def _choose_filter(codec: CascadeCodec, index: int, quality: int, inputs: postfilter.FilterInputs, rgb: np.ndarray) -> PostFilter:
    """The post-filter stage `index` sends for the H×W×3 original `rgb`, given the stage's
    `_filter_inputs`: fitted on the image, kept only where it pays at the stage's λ
    (`postfilter.choose`)."""
    height, width = rgb.shape[:2]
    return postfilter.choose(inputs, rgb, _stage_lambda(codec, index, quality), height * width)


def _stage_lambda(codec: CascadeCodec, index: int, quality: int) -> float:
    """Stage `index`'s rate-distortion weight at a quality level, which its encoder-side
    choices (post-filter, symbol search) trade bits against."""
    return lambda_for_step(codec.stages[index].config.step * codec.scale(quality))


class _RateSearch:
    """Each stage's symbols searched for rate + λ·distortion under the stage's real
    tables (a `model.SymbolSearch`, `symbol_search.py`). Keeps the symbols it
    chose: the next stage's coding contexts depend on them."""

    def __init__(self, codec: CascadeCodec, quality: int, picture: tuple[int, int], rounds: int, ms_ssim_share: float):
        self.codec, self.quality, self.picture, self.rounds = codec, quality, picture, rounds
        self.ms_ssim_share = ms_ssim_share
        self.previous: torch.Tensor | None = None

    def __call__(self, index: int, x: torch.Tensor, prev: torch.Tensor, rounded: torch.Tensor) -> torch.Tensor:
        stage = self.codec.stages[index]
        tables = self.codec.tables_for(index, self.quality)
        grid = tuple(rounded.shape[-2:])
        prior = stage_prior(self.previous, grid, rounded.shape[1])

        def moves(q: torch.Tensor) -> torch.Tensor:
            change = move_bits(tables, symbols_to_array(q), prior, grid, symbol_search.MOVES)
            return torch.from_numpy(change).reshape(len(symbol_search.MOVES), *q.shape).to(q.dtype)

        rate = symbol_search.StageRate(lambda q: tables.ideal_bits(symbols_to_array(q), prior, grid), moves)
        lam = _stage_lambda(self.codec, index, self.quality)
        self.previous = symbol_search.search_symbols(
            stage, x, prev, self.codec.scale(self.quality), rounded, rate, lam, self.picture, self.rounds, self.ms_ssim_share
        )
        return self.previous


class _InLoopFilter:
    """Each stage's post-filter, applied in the loop (a `model.LoopFilter`).

    After stage k, its filter (`pick(k, inputs)`, given the stage's `_filter_inputs`:
    the encoder chooses it, the decoder reads it from the file) is applied to the reconstruction on the
    picture, unrounded; stage k + 1 refines that image, and the padding beyond
    the picture stays as reconstructed. With no filter the reconstruction passes
    untouched, so files without filters (the exact ones) code the same symbols
    as an unfiltered cascade. `filters` collects the filters, `shown` holds the
    last stage's filtered image (float H×W×3 levels), the one a decode that stops
    there shows.
    """

    def __init__(self, height: int, width: int, pick: Callable[[int, postfilter.FilterInputs], PostFilter]):
        self.height, self.width = height, width
        self.pick = pick
        self.filters: list[PostFilter] = []
        self.shown: np.ndarray | None = None

    def __call__(self, index: int, images: StageImages) -> torch.Tensor:
        inputs = _filter_inputs(images, self.height, self.width)
        post_filter = self.pick(index, inputs)
        self.filters.append(post_filter)
        self.shown = postfilter.apply(inputs, post_filter)
        if post_filter.mode == FilterMode.NONE:
            return images.reconstruction
        following = images.reconstruction.clone()
        filtered = torch.from_numpy(self.shown / 255.0).permute(2, 0, 1)
        following[0, :, : self.height, : self.width] = filtered.to(following.dtype)
        return following


def _filter_inputs(images: StageImages, height: int, width: int) -> postfilter.FilterInputs:
    """A stage's images, cropped to the picture, as the post-filter's float64 H×W×3 pixel levels (0..255, unrounded)."""

    def levels(x: torch.Tensor) -> np.ndarray:
        return crop_to(x, height, width)[0].permute(1, 2, 0).double().numpy() * 255.0

    return postfilter.FilterInputs(levels(images.reconstruction), levels(images.estimate), levels(images.previous))


def _to_pixels(levels: np.ndarray, channels: int) -> np.ndarray:
    """Float H×W×3 pixel levels to the uint8 image shown: (H, W) when the image is grayscale."""
    if channels == 1:
        levels = levels.mean(axis=2)
    return np.clip(np.round(levels), 0, 255).astype(np.uint8)
