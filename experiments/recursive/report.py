"""Turning run results into the comparison table and the JSON record."""

from __future__ import annotations

import numpy as np

from .configs import PAPER_TABLE1, RunConfig
from .runs import RunResult


def summarise(configs: list[RunConfig], results: dict[str, list[RunResult]],
              pixel_scale: float = 1.0) -> list[dict]:
    """One row per configuration: mean and std over seeds of the per-run mean SSE.

    ``pixel_scale`` multiplies the SSE to put it on the paper's 128x128x3 scale when the
    images were resized (it is (128 / side)**2: same per-pixel error, paper's pixel count).
    """
    rows = []
    for c in configs:
        runs = results[c.key]
        means = np.array([r.mean_sse for r in runs]) * pixel_scale
        rows.append({
            "key": c.key, "label": c.label, "mode": c.mode, "norm": c.norm,
            "activation": c.activation, "variational": c.variational,
            "frozen_bn": c.frozen_bn,
            "paper_sse": PAPER_TABLE1.get(c.key),
            "sse_mean": float(means.mean()),
            "sse_std": float(means.std(ddof=1)) if len(means) > 1 else 0.0,
            "sse_per_seed": means.tolist(),
            "seeds": [r.seed for r in runs],
            "train_seconds_mean": float(np.mean([r.seconds for r in runs])),
            "pixel_scale": pixel_scale,
        })
    return rows


def _rank(values: list[float]) -> list[int]:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=int)
    ranks[order] = np.arange(1, len(values) + 1)
    return ranks.tolist()


def format_table(rows: list[dict]) -> str:
    """Markdown table: paper's figure, ours (mean ± std), and both rankings.

    Ranks are computed among the rows that have a paper figure (Table 1), so the two
    orderings can be compared directly; extras get no rank.
    """
    table = [r for r in rows if r["paper_sse"] is not None]
    paper_rank = dict(zip([r["key"] for r in table], _rank([r["paper_sse"] for r in table])))
    our_rank = dict(zip([r["key"] for r in table], _rank([r["sse_mean"] for r in table])))
    lines = [
        "| Configuration | Paper SSE | Paper rank | Ours SSE (mean ± std) | Our rank | Train s/run |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        paper = f"{r['paper_sse']:.0f}" if r["paper_sse"] is not None else "-"
        lines.append(
            f"| {r['label']} | {paper} | {paper_rank.get(r['key'], '-')} | "
            f"{r['sse_mean']:.1f} ± {r['sse_std']:.1f} | {our_rank.get(r['key'], '-')} | "
            f"{r['train_seconds_mean']:.0f} |")
    return "\n".join(lines)
