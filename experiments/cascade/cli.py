"""`cdcodec experiment cascade`: one command per dataset for the paper's experiment.

Trains (or takes from the cache) every selected algorithm for every seed,
prints the table in the paper's layout with the paper's values beside ours,
and writes <out>/<dataset>-e<epochs>.{txt,json,png}. `cdcodec experiment
cascade-merge` joins the records of a run made in parts (see `merge`).
"""

from __future__ import annotations

import shlex
import signal
import sys
from dataclasses import replace
from pathlib import Path

import click
import torch

from . import algorithms as algs
from . import merge
from .cache import DEFAULT_CACHE_DIR
from .config import TrainConfig
from .data import DATASET_FILES, load_dataset
from .parts import plan, run_parts, subprocess_launcher
from .rate import DEFAULT_STEP_SCALE
from .report import format_table, write_grid, write_json
from .runner import ExperimentSpec, run_experiment
from .summary import summarise


def _device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise click.ClickException("--device cuda requested but CUDA is not available")
    return name


def _check_data_dir(data_dir: Path) -> None:
    """A clear one-line error before any work when the data folder is missing."""
    if not Path(data_dir).is_dir():
        raise click.ClickException(f"data directory {data_dir} not found; pass --data-dir pointing at the shared data folder")


def _seed_list(seeds: int, only_seeds: tuple[int, ...]) -> list[int]:
    """The seeds a run covers: those given with --seed, else 0..seeds-1."""
    return sorted(set(only_seeds)) if only_seeds else list(range(seeds))


def _record_stem(out: Path, dataset: str, epochs: int) -> Path:
    """<out>/<dataset>-e<epochs>: where a run (or a merge) writes its .txt, .json and .png."""
    return out / f"{dataset}-e{epochs}"


def _run_options(command):
    """The options that say what is trained and how: shared by `cascade` and `cascade-parts`."""
    options = [
        click.option("--dataset", type=click.Choice(sorted(DATASET_FILES)), default="mnist", show_default=True),
        click.option("--data-dir", type=click.Path(path_type=Path), default=Path("../shared/data"), show_default=True,
                     help="Folder holding mnist/, fashion-mnist/ and medmnist/."),
        click.option("--epochs", type=click.IntRange(min=1), default=100, show_default=True,
                     help="Epochs per stage (paper: 100)."),
        click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True, help="Number of seeds (0..n-1)."),
        click.option("--seed", "only_seeds", type=click.IntRange(min=0), multiple=True,
                     help="Run only this seed (repeatable) instead of 0..n-1: splits one run over processes that share "
                          "the cache; the table then covers only these seeds."),
        click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto."),
        click.option("--cache-dir", type=click.Path(path_type=Path), default=DEFAULT_CACHE_DIR, show_default=True,
                     help="Finished and partial stages are kept here; reruns resume from it."),
        click.option("--quant-step", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_STEP_SCALE,
                     show_default=True, help="Latent quantization step, as a fraction of each channel's train std."),
        click.option("--hidden", type=click.IntRange(min=1), default=TrainConfig.hidden, show_default=True,
                     help="Hidden width of encoder and decoders (the paper does not give one)."),
        click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="torch CPU threads."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command("cascade")
@_run_options
@click.option("--out", type=click.Path(path_type=Path), default=Path("results/cascade"), show_default=True)
@click.option("--algorithms", "algorithm_spec", default="all", show_default=True,
              help="Comma list of names (AE, RCDAE, GCDVAE, ...) or groups: paper, extended, all.")
@click.option("--quiet", is_flag=True, help="No progress lines on stderr.")
def cascade_command(dataset, data_dir, epochs, seeds, only_seeds, device, out, algorithm_spec, cache_dir, quant_step, hidden, threads, quiet):
    """Reproduce the cascade-decoder autoencoder paper's table on one dataset."""
    torch.set_num_threads(threads)
    _check_data_dir(data_dir)
    try:
        selected = algs.select(algorithm_spec)
        splits = load_dataset(dataset, data_dir)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    cfg = replace(TrainConfig(), hidden=hidden)
    seed_list = _seed_list(seeds, only_seeds)
    log = (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))
    spec = ExperimentSpec(
        dataset=dataset,
        epochs=epochs,
        seeds=seed_list,
        algorithms=selected,
        cfg=cfg,
        device=_device(device),
        cache_root=cache_dir,
        step_scale=quant_step,
        log=log,
    )
    log(f"{dataset}: {len(splits.train)} train / {len(splits.test)} test images, "
        f"{len(selected)} algorithms, seed(s) {seed_list}, {epochs} epoch(s) per stage on {spec.device}")
    output = run_experiment(splits, spec)
    rows = summarise(dataset, output.runs)
    table = format_table(dataset, spec, rows)
    click.echo(table)
    seed_args = [a for s in seed_list for a in ("--seed", str(s))] if only_seeds else ["--seeds", str(seeds)]
    command = "cdcodec experiment cascade " + shlex.join(
        ["--dataset", dataset, "--epochs", str(epochs), *seed_args, "--algorithms", algorithm_spec,
         "--quant-step", f"{quant_step:g}", "--hidden", str(hidden)]
    )
    out.mkdir(parents=True, exist_ok=True)
    stem = _record_stem(out, dataset, epochs)
    stem.with_suffix(".txt").write_text(f"$ {command}\n\n{table}\n")
    write_json(stem.with_suffix(".json"), dataset, spec, output.runs, rows, command)
    write_grid(stem.with_suffix(".png"), output)
    log(f"wrote {stem}.txt, .json, .png")


@click.command("cascade-merge")
@click.argument("parts", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=Path("results/cascade"), show_default=True)
def cascade_merge_command(parts, out):
    """Join the JSON records of a cascade experiment run in parts (seeds or algorithm families) into one table.

    Writes <out>/<dataset>-e<epochs>.{txt,json}; the reconstruction grids stay with the parts.
    """
    try:
        _write_merged(list(parts), out)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _write_merged(parts: list[Path], out: Path) -> None:
    """Merge part records into <out>/<dataset>-e<epochs>.{txt,json} and print the table; ValueError if they disagree."""
    merged = merge.merge([merge.read_part(p) for p in parts])
    record = merged.record
    dataset, epochs = record["dataset"], int(record["epochs_per_stage"])
    names = set(r.algorithm for r in merged.runs)
    spec = ExperimentSpec(
        dataset=dataset,
        epochs=epochs,
        seeds=sorted(set(r.seed for r in merged.runs)),
        algorithms=[a for a in algs.ALL_ALGORITHMS if a.name in names],
        cfg=TrainConfig(**record["config"]),
        device="+".join(sorted(set(p.record.get("device", "?") for p in merged.parts))),
        step_scale=float(record["quant_step_scale"]),
    )
    rows = summarise(dataset, merged.runs)
    mismatch = merge.stage1_mismatch(merged.runs)
    table = format_table(dataset, spec, rows) + (
        f"\n\nMerged from {len(parts)} part(s); largest stage-1 SSIM gap between a cascade and its base's row "
        f"(same seed): {mismatch:.2g} (0: every cascade extends the very base model it is compared with)."
    )
    click.echo(table)
    command = "cdcodec experiment cascade-merge " + shlex.join([str(p) for p in parts])
    out.mkdir(parents=True, exist_ok=True)
    stem = _record_stem(out, dataset, epochs)
    stem.with_suffix(".txt").write_text(f"$ {command}\n\n{table}\n")
    part_list = [{"file": str(p.path), "command": p.record.get("command")} for p in merged.parts]
    write_json(stem.with_suffix(".json"), dataset, spec, merged.runs, rows, command,
               extra={"parts": part_list, "stage1_mismatch": mismatch})
    click.echo(f"wrote {stem}.txt, .json", err=True)


@click.command("cascade-parts")
@_run_options
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Each part writes <out>/<part>/ and <out>/<part>.log; the merged table goes to <out>/.")
@click.option("--algorithms", "algorithm_spec", default="paper", show_default=True,
              help="Comma list of names or groups, as for `cascade`.")
@click.option("--jobs", type=click.IntRange(min=1), default=2, show_default=True,
              help="Parts running at once: the number of cores on CPU; on a GPU more (untested: about one per CPU core).")
def cascade_parts_command(dataset, data_dir, epochs, seeds, only_seeds, device, cache_dir, quant_step, hidden, threads,
                          out, algorithm_spec, jobs):
    """Run `cascade` as parallel parts (one algorithm of one seed each), then merge their records.

    The same models and numbers as one `cascade` run over the same cache, in
    less time where there are cores (or a GPU) to spare. Every finished stage
    stays in the cache, so a rerun trains only what is missing and re-scores
    the rest.
    """
    _check_data_dir(data_dir)
    try:
        selected = algs.select(algorithm_spec)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    seed_list = _seed_list(seeds, only_seeds)
    options = ["--dataset", dataset, "--data-dir", str(data_dir), "--epochs", str(epochs), "--device", device,
               "--cache-dir", str(cache_dir), "--quant-step", f"{quant_step!r}", "--hidden", str(hidden),
               "--threads", str(threads)]
    job_list = plan(seed_list, selected)
    click.echo(f"{len(job_list)} parts, up to {jobs} at once; logs in {out}/<part>.log", err=True)
    # A SIGTERM (from `timeout`, or a session ending) stops the parts too, not just this process.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        codes = run_parts(job_list, subprocess_launcher(options, out), jobs, log=lambda m: click.echo(m, err=True))
    finally:
        signal.signal(signal.SIGTERM, previous)
    finished = [_record_stem(out / job.name, dataset, epochs).with_suffix(".json") for job in job_list if codes[job.key] == 0]
    if finished:
        try:
            _write_merged(finished, out)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    unfinished = [job.name for job in job_list if codes[job.key] != 0]
    if unfinished:
        raise click.ClickException(f"{len(unfinished)} part(s) did not finish: {', '.join(unfinished)} (see their logs)")


def main() -> None:  # pragma: no cover - convenience for `python -m`
    cascade_command(sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    main()
