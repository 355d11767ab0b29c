"""Saving and loading a codec as one safetensors file, and finding shipped models.

A weights file holds the network parameters, the per-stage integer symbol
tables and, in its metadata, the architecture config. Its sha256 is the
model's digest: it goes into every .cdc header so a file is only ever decoded
with exactly the weights and tables that made it.

Shipped models are listed in `trained/manifest.json` (model id -> file, sha256,
config and how it was trained). Model ids are stable strings chosen by hand,
never derived from list order.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..bitstream import SymbolTables
from .model import CascadeCodec, CodecConfig

MANIFEST = "manifest.json"


class ModelNotFoundError(LookupError):
    """No shipped or given model matches what was asked for."""


class StaleTablesError(ModelNotFoundError):
    """The file's symbol tables were fitted for an older latent coding; its network is fine.

    Separate from other unreadable files so that a caller holding an expensive
    trained network (the codec study's cache) can refit the tables instead of
    retraining."""


def tables_to_tensors(tables: SymbolTables, prefix: str) -> dict[str, torch.Tensor]:
    """Tables as compact tensors: frequencies as uint16, and each row's used entries
    only, concatenated (ragged), which keeps files small when a few rows are wide.

    Fitted tables give every context row of a channel the same value range, so
    offsets and sizes are stored once per channel when that holds (layout 1),
    else once per row (layout 0). Frequencies fit in 16 bits because each row
    sums to TABLE_TOTAL (2**16) over at least two entries that are each >= 1.
    Predicted channels (`bitstream.prediction`) add their indices and their
    residual tables under `{prefix}.predicted` and `{prefix}.residual`. The
    layout is (contexts, per-channel ranges), and a third entry 1 for tables
    fitted with sign alignment (`SymbolTables.sign_aligned`), which a build
    that predates it refuses instead of decoding wrongly.
    """
    extra = {}
    if tables.predicted:
        extra[f"{prefix}.predicted"] = torch.tensor(tables.predicted, dtype=torch.int32)
        extra.update(tables_to_tensors(tables.residuals, f"{prefix}.residual"))
    per_channel = _shared_per_channel(tables)
    step = tables.contexts if per_channel else 1
    used = [tables.pmfs[r, : tables.sizes[r] + 1] for r in range(len(tables.sizes))]
    freqs = np.concatenate(used)
    if freqs.max() > np.iinfo(np.uint16).max:
        raise ValueError("tables: a frequency does not fit in 16 bits")
    layout = [tables.contexts, int(per_channel)] + ([1] if tables.sign_aligned else [])
    return {
        f"{prefix}.offsets": torch.from_numpy(tables.offsets[::step].astype(np.int32)),
        f"{prefix}.sizes": torch.from_numpy(tables.sizes[::step].astype(np.int32)),
        f"{prefix}.freqs": torch.from_numpy(freqs.astype(np.uint16)),
        f"{prefix}.layout": torch.tensor(layout, dtype=torch.int32),
        **extra,
    }


def _shared_per_channel(tables: SymbolTables) -> bool:
    offsets = tables.offsets.reshape(-1, tables.contexts)
    sizes = tables.sizes.reshape(-1, tables.contexts)
    return bool((offsets == offsets[:, :1]).all() and (sizes == sizes[:, :1]).all())


def tables_from_tensors(tensors: dict[str, torch.Tensor], prefix: str) -> SymbolTables | None:
    """Inverse of `tables_to_tensors`; None where the file has no tables under `prefix`."""
    if f"{prefix}.freqs" not in tensors:
        return None
    if f"{prefix}.layout" not in tensors:
        raise StaleTablesError("weights file stores its symbol tables in an older layout (refit them: cdcodec refit-tables)")
    layout = tensors[f"{prefix}.layout"].tolist()
    if len(layout) not in (2, 3) or layout[0] < 1 or layout[1] not in (0, 1) or layout[2:] not in ([], [1]):
        raise ModelNotFoundError("weights file has inconsistent symbol tables")
    contexts, per_channel = layout[:2]
    repeat = contexts if per_channel else 1
    offsets = np.repeat(tensors[f"{prefix}.offsets"].numpy().astype(np.int64), repeat)
    sizes = np.repeat(tensors[f"{prefix}.sizes"].numpy().astype(np.int64), repeat)
    freqs = tensors[f"{prefix}.freqs"].numpy().astype(np.uint32)
    if len(sizes) == 0 or (sizes < 1).any() or freqs.shape[0] != int((sizes + 1).sum()):
        raise ModelNotFoundError("weights file has inconsistent symbol tables")
    pmfs = np.zeros((len(sizes), int(sizes.max()) + 1), dtype=np.uint32)
    lengths = sizes + 1  # row r is the next lengths[r] frequencies of the flat list
    rows = np.repeat(np.arange(len(sizes)), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    pmfs[rows, np.arange(len(freqs)) - starts] = freqs
    predicted, residuals = (), None
    if f"{prefix}.predicted" in tensors:
        predicted = tuple(tensors[f"{prefix}.predicted"].tolist())
        residuals = tables_from_tensors(tensors, f"{prefix}.residual")
    try:
        return SymbolTables(
            offsets=offsets.astype(np.int32), sizes=sizes.astype(np.int32), pmfs=pmfs, contexts=contexts,
            predicted=predicted, residuals=residuals, sign_aligned=len(layout) == 3,
        )
    except ValueError as exc:
        raise ModelNotFoundError(f"weights file has unusable symbol tables ({exc}; refit them: cdcodec refit-tables)") from None


def codec_tensors(codec: CascadeCodec) -> dict[str, torch.Tensor]:
    """Network parameters and every finished stage's tables, by name."""
    tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in codec.state_dict().items()}
    for i, per_quality in enumerate(codec.tables):
        for quality, tables in per_quality.items():
            tensors.update(tables_to_tensors(tables, f"tables.{i}.q{quality}"))
    return tensors


def restore_codec(codec: CascadeCodec, tensors: dict[str, torch.Tensor], with_tables: bool = True) -> None:
    """Inverse of `codec_tensors`, in place; `with_tables=False` restores the network only
    (to refit the tables, e.g. after the coding contexts changed)."""
    codec.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
    if not with_tables:
        return
    for i in range(codec.num_stages):
        codec.tables[i] = {}
        for quality in range(len(codec.config.qualities)):
            tables = tables_from_tensors(tensors, f"tables.{i}.q{quality}")
            if tables is not None:
                codec.tables[i][quality] = tables


def save_codec(codec: CascadeCodec, path: str | Path) -> str:
    """Write weights, tables and config to `path`; return the file's sha256 hex digest."""
    metadata = {"config": json.dumps(codec.config.to_dict(), sort_keys=True)}
    save_file(codec_tensors(codec), str(path), metadata=metadata)
    return file_digest(path)


def load_codec(path: str | Path, with_tables: bool = True) -> tuple[CascadeCodec, bytes]:
    """Load a codec from a weights file; return it with its 32-byte digest.

    `with_tables=False` loads the network without its symbol tables."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise ModelNotFoundError(f"{path} is not a readable safetensors file ({exc})") from None
    if "config" not in metadata:
        raise ModelNotFoundError(f"{path} is not a cdcodec weights file (no config)")
    codec = CascadeCodec(CodecConfig.from_dict(json.loads(metadata["config"])))
    restore_codec(codec, tensors, with_tables)
    codec.eval()
    return codec, bytes.fromhex(file_digest(path))


def file_digest(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def trained_dir() -> Path:
    return Path(str(resources.files("cdcodec.trained")))


def read_manifest() -> dict:
    path = trained_dir() / MANIFEST
    if not path.exists():
        return {"default": None, "models": []}
    return json.loads(path.read_text())


def available_models() -> list[str]:
    return [m["id"] for m in read_manifest()["models"]]


def default_model_id() -> str:
    manifest = read_manifest()
    if not manifest.get("default"):
        raise ModelNotFoundError("no trained model is shipped in trained/ (see README: training)")
    return manifest["default"]


def load_shipped(model_id: str | None = None) -> tuple[CascadeCodec, bytes]:
    """Load a model from trained/ by id (the default one when None), verifying its sha256."""
    return _load_shipped_id(model_id or default_model_id())


@lru_cache(maxsize=4)
def _load_shipped_id(model_id: str) -> tuple[CascadeCodec, bytes]:
    """The cached load, keyed by the resolved id (so None and the default id share one entry)."""
    path = shipped_file(model_id)
    codec, digest = load_codec(path)
    if codec.config.model_id != model_id:
        raise ModelNotFoundError(f"weights file for {model_id} declares id {codec.config.model_id}")
    return codec, digest


def manifest_entry(model_id: str) -> dict:
    """The manifest's record of a shipped model (file, sha256, config, training).

    A retired model (see `model_record`) raises with where its weights can still be found.
    """
    manifest = read_manifest()
    for entry in manifest["models"]:
        if entry["id"] == model_id:
            return entry
    for entry in manifest.get("retired", []):
        if entry["id"] == model_id:
            raise ModelNotFoundError(_retired_message(entry))
    raise ModelNotFoundError(f"unknown model id {model_id!r} (shipped: {', '.join(available_models()) or 'none'})")


def model_record(model_id: str) -> dict:
    """The manifest's record of a model, shipped or retired.

    Superseded models leave trained/ (every shipped file travels with each
    checkout, and the repository has to stay small) but keep their record
    under "retired": how they were trained, and the git commit whose trained/
    still holds their weights, so older files stay decodable with
    `--model FILE` and the fine-tuning chains of newer models stay traceable.
    """
    manifest = read_manifest()
    for entry in manifest["models"] + manifest.get("retired", []):
        if entry["id"] == model_id:
            return entry
    raise ModelNotFoundError(f"unknown model id {model_id!r}")


def trained_ms_ssim_share(model_id: str) -> float:
    """The share of 1 − MS-SSIM in the distortion the model was last trained for
    (`training.train.ms_ssim_share`), from its manifest record: what the encoder's
    symbol search weighs too. 0 (squared error) for a model the manifest does not know."""
    try:
        settings = model_record(model_id).get("training", {}).get("settings", {})
    except ModelNotFoundError:
        return 0.0
    metric = settings.get("metric", "mse")
    return {"mse": 0.0, "ms-ssim": 1.0}.get(metric, float(settings.get("ms_ssim_share", 0.0)))


def _retired_message(entry: dict) -> str:
    name, commit = entry["file"], entry.get("weights_commit")
    if not commit:
        return f"model {entry['id']!r} was never shipped; trained/manifest.json records the command that makes it"
    return (
        f"model {entry['id']!r} is no longer shipped; its weights are trained/{name} in cdcodec's git history "
        f"(git show {commit[:12]}:trained/{name} > {name}): pass that file with --model"
    )


def shipped_file(model_id: str) -> Path:
    """Path of a shipped model's weights file, after checking it against its manifest sha256."""
    entry = manifest_entry(model_id)
    path = trained_dir() / entry["file"]
    if not path.is_file() or file_digest(path) != entry["sha256"]:
        raise ModelNotFoundError(f"weights file for {model_id} does not match its manifest sha256")
    return path
