"""`cdcodec experiment codec-study`: train the study's runs, measure them on Kodak, write the tables.

Everything slow is cached outside the repository (trained runs, the widened
stage 1, the residual decoder, per-model measurements), so running the command
again only does what is missing. The shipped cascade's points, and its stage 1
alone at the shipped quality levels, come from the `cdcodec bench` results file
measured with the same model (`--bench-json`).
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click

from ...bench.curves import average_curve
from ...bench.images import folder_images
from ...bench.jsonfile import read_json
from ...bitstream.container import FORMAT_VERSION
from .runs import DEFAULT_CACHE, RUNS, SINGLE_STAGE_RUNS, train_run, weights_path

SHIPPED_STAGE1 = "shipped stage 1"
ABLATION = (
    "(a) stage 1 alone, finer steps",
    "(b) stage 1 + decoder-only residual stage",
    "(c) cascade, stages with their own latents",
)  # then (d), (e): SINGLE_STAGE_RUNS


def _cached(path: Path, make):
    if path.exists():
        return json.loads(path.read_text())
    records = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records))
    return records


def _bench_records(bench_json: Path, names: set[str]) -> list[dict]:
    data = read_json(bench_json)
    return [r for r in data["measurements"] if r["codec"] == "cdcodec" and r["image"] in names]


def _shipped_stage1() -> tuple[int, str]:
    """(stage 1's training steps, a note) of the default shipped model, from the manifest.

    A fine-tuned model's steps add to those of the model it started from
    (`fine_tuned_from`, followed back to a model trained from scratch).
    """
    from ...codec.weights import default_model_id, model_record

    chain = [model_record(default_model_id())]
    while chain[-1]["training"].get("fine_tuned_from"):
        chain.append(model_record(chain[-1]["training"]["fine_tuned_from"]))
    steps = sum(stage1_steps(record["training"]["log"]) for record in chain)
    return steps, "default model: " + " fine-tuned from ".join(record["id"] for record in chain)


def stage1_steps(log: list | dict) -> int:
    """Steps that trained stage 1, from a manifest's training log: `cdcodec train` and
    chains of `cdcodec train-stage` log each stage run in a list, where stage 1 may be
    trained more than once or not at all (`cdc-mix-13`'s chain: stages 1, 2, 1, 2, 3);
    `cdcodec train-refine` logs one run (a dict) whose every step trained all refine
    CNNs, stage 1's among them."""
    if isinstance(log, dict):
        return int(log["steps"])
    return sum(int(entry["steps"]) for entry in log if entry["stage"] == 1)


def _relabel(records: list[dict], name: str) -> list[dict]:
    return [dict(r, codec=name) for r in records]


@click.command("codec-study")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=Path("../shared/data/train-photos"), show_default=True, help="Training photos.")
@click.option("--images", "images_dir", type=click.Path(path_type=Path), default=Path("../shared/data/kodak"), show_default=True, help="Evaluation images.")
@click.option("--bench-json", type=click.Path(path_type=Path), default=Path("results/bench/kodak.json"), show_default=True, help="`cdcodec bench` results (JSON, plain or .gz) of the shipped model on the same images.")
@click.option("--cache", type=click.Path(path_type=Path), default=DEFAULT_CACHE, show_default=True)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("results/codec-study"), show_default=True)
@click.option("--train/--no-train", default=True, show_default=True, help="Train runs that are missing (else leave them out).")
@click.option("--threads", type=int, default=1, show_default=True)
def codec_study_command(data_dir, images_dir, bench_json, cache, out_dir, train, threads) -> None:
    """Training-time curve, recipe variants and the cascade ablation on Kodak (issues 3 and 7)."""
    import torch

    from .decoder_only import load_residual_decoder, train_residual_decoder
    from .evaluate import measure_model
    from .plots import plot_ablation, plot_training
    from .refit import current_weights, refit_command
    from .report import ablation_table, training_table
    from .wide import widen_stage1

    torch.set_num_threads(threads)
    for folder in (data_dir, images_dir):
        if not folder.is_dir():
            raise click.ClickException(f"{folder} does not exist (the study needs ../shared/data)")
    images = folder_images(images_dir)
    names = {im.name for im in images}
    # Measurements are cached per latent format: a new format changes every file size.
    tag = f"{images_dir.name}-{len(images)}-format{FORMAT_VERSION}"
    records_dir = cache / "records"
    shipped = _bench_records(bench_json, names)
    if {r["image"] for r in shipped} != names:
        raise click.ClickException(f"{bench_json} does not cover every image in {images_dir}")

    curves, rows, refits = {}, [], []

    def measurable(path: Path) -> Path:
        """The run's weights, with tables refit if they predate the current latent coding."""
        weights = current_weights(path, data_dir)
        if weights != path:  # recorded with the cache folder shown as CACHE, as the runs' commands are
            refits.append(refit_command(path, data_dir).replace(str(cache), "CACHE"))
        return weights

    def available(run) -> bool:
        if weights_path(cache, run).exists() or train:
            return True
        click.echo(f"skipping {run.name}: not trained (run without --no-train)", err=True)
        return False

    def measured(run, label: str) -> tuple[list[dict], dict]:
        """(average curve, table row) of a run: trained if missing, tables refit if stale, measured once per format."""
        path = train_run(run, data_dir, cache)
        weights = measurable(path)
        records = _cached(records_dir / f"{run.name}-{tag}.json", lambda: measure_model(label, weights, images, 1, range(5)))
        log = json.loads((path.parent / "log.json").read_text())
        row = {"name": run.name, "steps": run.steps, "note": run.note, "train_seconds": log[0].get("train_seconds"), "command": run.command(str(data_dir))}
        return average_curve(records, label), row

    stage1 = [r for r in shipped if r["setting"].endswith("stages=1")]
    curves[SHIPPED_STAGE1] = average_curve(_relabel(stage1, SHIPPED_STAGE1), SHIPPED_STAGE1)
    steps, note = _shipped_stage1()
    rows.append({"name": SHIPPED_STAGE1, "steps": steps, "note": note, "train_seconds": None})
    for run in filter(available, RUNS):
        curves[run.name], row = measured(run, run.name)
        rows.append(row)

    wide = widen_stage1(data_dir, cache / "stage1-wide" / "model.safetensors")
    finer = _cached(records_dir / f"stage1-wide-{tag}.json", lambda: measure_model(ABLATION[0], wide, images, 1, range(5, 11)))
    decoder_path = train_residual_decoder(data_dir, cache / "residual-decoder" / "decoder.safetensors")
    decoder = load_residual_decoder(decoder_path)
    with_decoder = _cached(records_dir / f"residual-decoder-{tag}.json", lambda: measure_model(ABLATION[1], None, images, 1, range(5), post=decoder.apply))
    ablation = {
        ABLATION[0]: average_curve(_relabel(stage1, ABLATION[0]) + finer, ABLATION[0]),
        ABLATION[1]: average_curve(with_decoder, ABLATION[1]),
        ABLATION[2]: average_curve(_relabel(shipped, ABLATION[2]), ABLATION[2]),
    }
    single_runs = []
    for run in filter(available, SINGLE_STAGE_RUNS):
        ablation[run.note], row = measured(run, run.note)
        single_runs.append(row)

    reference = "base-1000" if "base-1000" in curves else SHIPPED_STAGE1
    tables = {"training": training_table(rows, curves, reference), "ablation": ablation_table(ablation, (ABLATION[0], ABLATION[2]))}
    out_dir.mkdir(parents=True, exist_ok=True)
    command = "cdcodec experiment codec-study " + " ".join(shlex.quote(a) for a in sys.argv[3:])
    (out_dir / "kodak.json").write_text(json.dumps({"command": command, "runs": rows, "single_stage_runs": single_runs, "refits": refits, "curves": curves, "ablation": ablation, "tables": tables}, indent=1))
    (out_dir / "tables.md").write_text(
        f"Made by `{command}`.\n\n## Training runs (stage 1 only, Kodak)\n\n{tables['training']}\n\n## Cascade ablation (Kodak)\n\n{tables['ablation']}\n"
    )
    plot_training(rows, curves, out_dir / "training.png")
    plot_ablation(ablation, out_dir / "ablation.png")
    click.echo(tables["training"])
    click.echo()
    click.echo(tables["ablation"])
