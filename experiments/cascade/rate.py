"""What the latent costs: quantize it and code it with the project's entropy coder.

The paper reports SSIM of unquantized latents only. To say what each algorithm
buys at what rate, the 30-dim latent is quantized with a uniform scalar step per
channel, ``step_c = step_scale * std_c`` where std_c is the channel's standard
deviation over the training split. Tying the step to each channel's spread puts
AE latents (arbitrary scale) and AAE/VAE/WAE latents (pulled towards N(0, 1)) on
the same footing: the same relative precision, whatever the latent scale. The 30
steps and the coding tables are model parameters (fit on the training split,
shipped with the decoder), not per-image side information.

Bits per image are taken from real coded bytes of `cdcodec.bitstream`:
the whole test split coded as one payload (8 * bytes / images), and, for a
prefix of the test split, each image coded alone (the cost when images travel
separately, including the coder's 32-bit word granularity).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cdcodec.bitstream import SymbolTables, decode_latent, encode_latent, tables_from_counts

#: Default quantization step as a fraction of each latent channel's train std.
DEFAULT_STEP_SCALE = 0.125
#: Largest table a channel gets; rarer values outside it are escape-coded.
MAX_TABLE_SIZE = 4096


@dataclass(frozen=True)
class Quantizer:
    """Uniform per-channel scalar quantizer of a (N, C) latent."""

    steps: np.ndarray  # float64 (C,)

    @classmethod
    def fit(cls, train_latents: np.ndarray, step_scale: float) -> "Quantizer":
        std = np.asarray(train_latents, dtype=np.float64).std(axis=0)
        return cls(np.maximum(std, 1e-8) * step_scale)

    def symbols(self, latents: np.ndarray) -> np.ndarray:
        """(N, C) floats -> (C, N) int32 symbols, the layout the coder takes."""
        q = np.rint(np.asarray(latents, dtype=np.float64) / self.steps)
        return np.clip(q, -(1 << 15), (1 << 15) - 1).astype(np.int32).T

    def values(self, symbols: np.ndarray) -> np.ndarray:
        """(C, N) symbols -> (N, C) reconstructed latents."""
        return (np.asarray(symbols, dtype=np.float64).T * self.steps).astype(np.float32)


def fit_tables(train_symbols: np.ndarray) -> SymbolTables:
    """Per-channel frequency tables from the training split's symbols (C, N)."""
    lo = train_symbols.min(axis=1)
    hi = train_symbols.max(axis=1)
    size = int(min(MAX_TABLE_SIZE, (hi - lo).max() + 1))
    counts = np.zeros((train_symbols.shape[0], size), dtype=np.int64)
    for c, row in enumerate(train_symbols):
        idx = row.astype(np.int64) - lo[c]
        idx = idx[idx < size]
        np.add.at(counts[c], idx, 1)
    return tables_from_counts(counts, lo.astype(np.int32))


@dataclass(frozen=True)
class RateReport:
    bits_per_image: float  # whole test split in one payload
    bits_per_image_single: float  # mean over images coded one by one
    single_images: int  # how many images were coded one by one
    ideal_bits_per_image: float  # information content under the tables (estimate)
    roundtrip_ok: bool


def measure_rate(tables: SymbolTables, test_symbols: np.ndarray, single_limit: int = 1000) -> RateReport:
    """Code the test symbols, check they decode exactly, and count the bytes."""
    n = test_symbols.shape[1]
    payload = encode_latent(test_symbols, tables)
    ok = bool(np.array_equal(decode_latent(payload, tables, n), test_symbols))
    singles = []
    for i in range(min(n, single_limit)):
        one = test_symbols[:, i : i + 1]
        coded = encode_latent(one, tables)
        ok = ok and bool(np.array_equal(decode_latent(coded, tables, 1), one))
        singles.append(8 * len(coded))
    return RateReport(
        bits_per_image=8.0 * len(payload) / n,
        bits_per_image_single=float(np.mean(singles)) if singles else float("nan"),
        single_images=len(singles),
        ideal_bits_per_image=tables.ideal_bits(test_symbols) / n,
        roundtrip_ok=ok,
    )
