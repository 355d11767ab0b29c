"""Merge experiment records made in parts into one table.

The paper's protocol (100 epochs per stage) costs about 2.5 CPU-hours per
seed of MNIST here, more than one working session, and the stage cache lives
outside the repository, where it does not always survive from one session to
the next. So a long experiment is run in parts that each fit a session (one
seed, or one family of algorithms of one seed: `--seed K --algorithms ...`),
each part's JSON record is committed when it finishes, and this module joins
the records into the table the single command would have printed.

Parts are only joined when they measured the same thing: same dataset, epochs,
training config and latent quantization step. Runs of the same (algorithm,
seed) in two parts must agree exactly (every part re-scores AE, which it always
includes); the merged record keeps one. A cascade whose base model had to be
retrained in another part (a lost cache) could start from a slightly different
stage 1 than the base's own row; `stage1_mismatch` measures that, so a merged
table says whether its paired ΔSSIM really compares like with like.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .algorithms import ALL_ALGORITHMS, BY_NAME
from .rate import RateReport
from .runner import RunResult

#: Record fields that must be equal in every part for their runs to be comparable.
MATCHING_FIELDS = ("dataset", "epochs_per_stage", "config", "quant_step_scale")

_ORDER = {a.name: i for i, a in enumerate(ALL_ALGORITHMS)}


@dataclass
class Part:
    path: Path
    record: dict
    runs: list[RunResult]


@dataclass
class Merged:
    record: dict  # the matching fields, from the first part
    runs: list[RunResult]  # canonical algorithm order, then seed
    parts: list[Part]


def _run(raw: dict) -> RunResult:
    return RunResult(
        algorithm=raw["algorithm"],
        seed=int(raw["seed"]),
        stage_ssim=list(raw["stage_ssim"]),
        stage_ssim_quantized=list(raw["stage_ssim_quantized"]),
        stage_psnr=list(raw["stage_psnr"]),
        rate=RateReport(**raw["rate"]),
        train_seconds=raw.get("train_seconds"),
    )


def read_part(path: str | Path) -> Part:
    """One record written by `cdcodec experiment cascade`; ValueError if it is not one."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
        runs = [_run(r) for r in record["runs"]]
        missing = [f for f in MATCHING_FIELDS if f not in record]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a cascade experiment record ({exc.__class__.__name__}: {exc})") from None
    if missing:
        raise ValueError(f"{path}: not a cascade experiment record (no {', '.join(missing)})")
    unknown = sorted({r.algorithm for r in runs} - set(BY_NAME))
    if unknown:
        raise ValueError(f"{path}: unknown algorithm(s) {', '.join(unknown)}")
    return Part(path, record, runs)


def merge(parts: list[Part]) -> Merged:
    """Join the runs of comparable parts; ValueError where parts disagree."""
    if not parts:
        raise ValueError("no parts to merge")
    first = parts[0]
    for part in parts[1:]:
        for name in MATCHING_FIELDS:
            if part.record[name] != first.record[name]:
                raise ValueError(f"{part.path} and {first.path} differ in {name}; they measured different things")
    by_key: dict[tuple[str, int], tuple[RunResult, Path]] = {}
    for part in parts:
        for run in part.runs:
            key = (run.algorithm, run.seed)
            if key in by_key:
                kept, where = by_key[key]
                if kept.stage_ssim != run.stage_ssim or kept.rate != run.rate:
                    raise ValueError(
                        f"{run.algorithm} seed {run.seed} differs between {where} and {part.path}; "
                        "re-run one of them from the same cache"
                    )
                continue
            by_key[key] = (run, part.path)
    runs = sorted((r for r, _ in by_key.values()), key=lambda r: (_ORDER[r.algorithm], r.seed))
    return Merged({name: first.record[name] for name in MATCHING_FIELDS}, runs, parts)


def stage1_mismatch(runs: list[RunResult]) -> float:
    """Largest |stage-1 SSIM of a cascade - SSIM of its base's row| over seeds where both are present.

    0 when every cascade was built on the very base model its paired row scored.
    """
    base_ssim = {(r.algorithm, r.seed): r.stage_ssim[0] for r in runs if BY_NAME[r.algorithm].cascade is None}
    gaps = [
        abs(r.stage_ssim[0] - base_ssim[(BY_NAME[r.algorithm].base_name, r.seed)])
        for r in runs
        if BY_NAME[r.algorithm].cascade is not None and (BY_NAME[r.algorithm].base_name, r.seed) in base_ssim
    ]
    return max(gaps, default=0.0)
