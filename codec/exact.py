"""The exact stages: lossless and near-lossless reconstruction, identical on every machine.

A lossless stage corrects a prediction of the image, and encoder and decoder
must agree on that prediction to the last bit. The lossy reconstruction comes
from float networks and does not qualify (thread count, CPU or GPU change its
last bits). So the exact stages build their own prediction, the **preview**:
the linear part of every lossy stage's decoder (the block synthesis transform)
applied to the decoded integer symbols in exact integer arithmetic.

- Each stage's synthesis filters, times its quantizer step, are scaled to
  fixed point (PREVIEW_BITS fractional bits) and rounded once to integers.
- A stage whose kernels overlap their neighbours' (StageConfig.overlap) adds
  each block's wider patch into the picture where it lands (overlap-add).
- The preview is a sum of products of integers. It is evaluated in float64,
  where every partial sum is an integer below 2^53 (checked), so the result is
  exact whatever the summation order, BLAS library or thread count.
- The residual to the original is coded by `bitstream.residual` with integer
  tables; near-lossless quantizes it first so that no pixel errs by more than D.

The pixels a decoder outputs carry a CRC32 in the payload, checked on decode.
"""

from __future__ import annotations

import numpy as np

from ..bitstream import CdcFormatError
from .model import CascadeCodec

PREVIEW_BITS = 12
_EXACT_LIMIT = float(2**53)


def synthesis_matrices(codec: CascadeCodec, scales: list[float]) -> list[np.ndarray]:
    """Per stage: (C, 3·k·k) integer-valued float64 matrices, symbols -> pixel units·2^PREVIEW_BITS,
    with k the side of its synthesis kernel (block + 2·overlap).

    `scales` holds each stage's quality factor on its quantizer step.
    """
    matrices = []
    for stage, factor in zip(codec.stages, scales):
        weight = stage.transform.synthesis.weight.detach().cpu().double().numpy()
        scale = stage.config.step * factor * 255.0 * (1 << PREVIEW_BITS)
        matrices.append(np.round(weight.reshape(weight.shape[0], -1) * scale))
    return matrices


def exact_preview(codec: CascadeCodec, symbols: list[np.ndarray], scales: list[float], height: int, width: int) -> np.ndarray:
    """uint8 (height, width, 3) preview from the (C, h·w) symbol arrays of the first stages.

    `scales` are the stages' quality factors; `height` and `width` the padded
    image size the latents were computed on.
    """
    acc = np.zeros((height, width, 3), dtype=np.float64)
    for matrix, stage_symbols, stage in zip(synthesis_matrices(codec, scales[: len(symbols)]), symbols, codec.stages):
        block, overlap = stage.config.block, stage.config.overlap
        values = stage_symbols.astype(np.float64)
        # A pixel sums the patches of up to `reach`² blocks (1 without an overlap).
        reach = -(-(block + 2 * overlap) // block)
        bound = reach * reach * np.abs(values).max(initial=0) * np.abs(matrix).sum(axis=0).max(initial=0)
        if bound >= _EXACT_LIMIT:
            raise CdcFormatError("latent too large for exact integer reconstruction")
        patches = values.T @ matrix  # (h·w, 3·k·k): integers, exactly
        acc += _overlap_add(patches, block, overlap, height, width)
    if np.abs(acc).max(initial=0) >= _EXACT_LIMIT:
        raise CdcFormatError("latent too large for exact integer reconstruction")
    fixed = acc.astype(np.int64) + (255 << (PREVIEW_BITS - 1)) + (1 << (PREVIEW_BITS - 1))
    return np.clip(fixed >> PREVIEW_BITS, 0, 255).astype(np.uint8)


def _overlap_add(patches: np.ndarray, block: int, overlap: int, height: int, width: int) -> np.ndarray:
    """(height, width, 3): each block's (3, k, k) patch (rows of `patches`, blocks in
    raster order) added where it lands, `overlap` pixels beyond its block on every
    side, the part beyond the picture dropped (what the transposed convolution's
    padding does). Integer sums in float64: exact in any order below 2^53."""
    h, w = height // block, width // block
    side = block + 2 * overlap
    tiles = -(-side // block)  # the patch cut into tiles × tiles pieces of one block each
    padded = np.zeros((h, w, 3, tiles * block, tiles * block))
    padded[..., :side, :side] = patches.reshape(h, w, 3, side, side)
    pieces = padded.reshape(h, w, 3, tiles, block, tiles, block)
    canvas = np.zeros((h + tiles - 1, block, w + tiles - 1, block, 3))
    for row in range(tiles):
        for col in range(tiles):
            canvas[row : row + h, :, col : col + w, :, :] += pieces[:, :, :, row, :, col, :].transpose(0, 3, 1, 4, 2)
    canvas = canvas.reshape((h + tiles - 1) * block, (w + tiles - 1) * block, 3)
    return canvas[overlap : overlap + height, overlap : overlap + width]


def to_channels(preview_rgb: np.ndarray, channels: int) -> np.ndarray:
    """The preview in the image's own channels: grayscale is the rounded mean of R, G, B."""
    if channels == 3:
        return preview_rgb
    total = preview_rgb.astype(np.int64).sum(axis=2, keepdims=True)
    return ((total + 1) // 3).astype(np.uint8)


def quantize_residual(residual: np.ndarray, max_error: int) -> np.ndarray:
    """Near-lossless quantization: bins of width 2·D+1 centred on 0 (identity for D = 0)."""
    if max_error == 0:
        return residual
    width = 2 * max_error + 1
    return np.sign(residual) * ((np.abs(residual) + max_error) // width)


def reconstruct(preview: np.ndarray, quantized: np.ndarray, max_error: int) -> np.ndarray:
    """Decoded pixels: within `max_error` of the original in every sample, guaranteed.

    The quantized residual is within D of the true one before clipping, and
    clipping to 0..255 (where the original lies) can only move a value closer.
    """
    values = preview.astype(np.int64) + quantized * (2 * max_error + 1)
    return np.clip(values, 0, 255).astype(np.uint8)
