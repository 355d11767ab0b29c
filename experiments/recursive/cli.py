"""``cdcodec experiment recursive``: reproduce Table 1 of the recursive-autoencoder paper.

Trains the eight configurations of Table 1 (plus, unless ``--no-extras``, the per-layer
variant, the two VAEs and recursive batch norm with frozen layers left in training mode)
for every seed, prints the paper's figures beside ours, and
writes ``results.json``, ``table.md``, ``reconstructions.png`` and ``vae_samples.png``
into ``--out``.  Finished runs are cached under ``--cache-dir`` and reused, so an
interrupted reproduction resumes where it stopped.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import click
import torch

from .configs import EXTRAS, TABLE1
from .data import DataMissing, load_faces, split_indices, to_tensor
from .figures import reconstruction_grid, sample_grid
from .report import format_table, summarise
from .runs import Setup, run_one
from .training import TrainSettings

DEFAULT_CACHE = Path("~/.cache/cdcodec/recursive").expanduser()
N_FIGURE_FACES = 4
N_SAMPLES = 8


@click.command("recursive")
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path("../shared/data/lfw"),
              show_default=True, help="Folder of LFW face images.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("results/recursive"),
              show_default=True, help="Where to write the JSON, table and figures.")
@click.option("--epochs", type=click.IntRange(1), default=5, show_default=True,
              help="Epochs per model (per depth for recursive training).")
@click.option("--seeds", type=click.IntRange(1), default=3, show_default=True,
              help="Number of seeds (0..N-1) per configuration.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--train-images", type=click.IntRange(1), default=None,
              help="Use only this many training faces (default: all not held out).")
@click.option("--n-eval", type=click.IntRange(1), default=100, show_default=True,
              help="Held-out faces the table averages over.")
@click.option("--crop", type=click.IntRange(8), default=128, show_default=True,
              help="Centre crop size (the paper: 128).")
@click.option("--size", type=click.IntRange(8), default=None,
              help="Resize the crop to this size (default: keep the crop, as the paper).")
@click.option("--layers", type=click.IntRange(2), default=7, show_default=True,
              help="Encoder (= decoder) layers; 7 takes a 128 crop to a 1x1 code.")
@click.option("--base-width", type=click.IntRange(1), default=8, show_default=True,
              help="Filters of the first encoder layer (doubling per layer).")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Adam learning rate.")
@click.option("--extras/--no-extras", default=True, show_default=True,
              help="Also train the per-layer-loss model, the two VAEs and the frozen-BN-in-training-mode variants.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=DEFAULT_CACHE,
              show_default=True, help="Finished runs and decoded faces live here.")
@click.option("--no-cache", is_flag=True, help="Train everything afresh and store nothing.")
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True,
              help="torch CPU threads (keep low on a shared machine).")
@click.option("--verbose", "-v", is_flag=True, help="Print the loss after every epoch.")
@click.pass_context
def recursive_command(ctx: click.Context, data_dir: Path, out: Path, epochs: int, seeds: int,
                      device: str, train_images: int | None, n_eval: int, crop: int, size: int | None,
                      layers: int,
                      base_width: int, batch_size: int, lr: float, extras: bool,
                      cache_dir: Path, no_cache: bool, threads: int, verbose: bool) -> None:
    """Train the paper's Table 1 autoencoders on LFW and compare with its figures."""
    torch.set_num_threads(threads)
    if device == "cuda" and not torch.cuda.is_available():
        raise click.ClickException("--device cuda requested but no CUDA device is available")
    side = size or crop
    if side % 2 ** layers:
        raise click.ClickException(f"image side {side} is not divisible by 2**{layers}")
    cache = None if no_cache else cache_dir
    try:
        faces, names, data_key = load_faces(data_dir, crop=crop, size=size, cache_dir=cache)
    except DataMissing as e:
        raise click.ClickException(f"{e} (pass --data-dir)") from None
    try:
        split = split_indices(len(faces), n_eval=n_eval, n_train=train_images)
    except ValueError as e:
        raise click.ClickException(str(e)) from None

    settings = TrainSettings(epochs=epochs, batch_size=batch_size, lr=lr)
    setup = Setup(n_layers=layers, base_width=base_width, settings=settings, data_key=data_key,
                  n_train=len(split.train), n_eval=len(split.eval))
    configs = list(TABLE1) + (list(EXTRAS) if extras else [])
    click.echo(f"{len(faces)} faces ({crop}x{crop} crop, {side}x{side} input), {len(split.train)} for training, "
               f"{len(split.eval)} held out; {len(configs)} configurations x {seeds} seeds, "
               f"{epochs} epochs, base width {base_width}, {layers} layers, device {device}")

    log = click.echo if verbose else None
    results: dict[str, list] = {c.key: [] for c in configs}
    total, done = len(configs) * seeds, 0
    for seed in range(seeds):
        for c in configs:
            r = run_one(c, seed, setup, faces, split, device, cache, log)
            results[c.key].append(r)
            done += 1
            click.echo(f"[{done}/{total}] {c.key} seed {seed}: SSE {r.mean_sse:.1f} "
                       f"({'cached' if r.cached else f'{r.seconds:.0f} s'})")

    pixel_scale = (128 / side) ** 2
    rows = summarise(configs, results, pixel_scale)
    table = format_table(rows)
    scaled = "" if side == 128 else f", x{pixel_scale:g} to the paper's 128x128 pixel count"
    click.echo(f"\nSum of squared error per held-out image (pixels in [0, 1]{scaled}); "
               "paper: Ray & Hannon 2022, Table 1\n")
    click.echo(table)

    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(table + "\n")
    record = {
        "paper": "Ray & Hannon, Recursively Trained Autoencoders (2022), Table 1",
        "metric": "sum of squared error per image in [0,1], mean over held-out faces, times "
                  "pixel_scale = (128/side)**2 to put resized runs on the paper's 128x128x3 "
                  "scale; mean and sample std over seeds",
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in ctx.params.items()},
        "data": {"n_faces": len(faces), "n_train": len(split.train), "n_eval": len(split.eval),
                 "eval_files": [names[i] for i in split.eval], "fingerprint": data_key},
        "environment": {"torch": torch.__version__, "python": platform.python_version(),
                        "device": device, "threads": threads},
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
        "rows": rows,
    }
    (out / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    _figures(configs, results, faces, split, side, layers, device, out)
    click.echo(f"\nwrote {out}/results.json, table.md, reconstructions.png"
               + (", vae_samples.png" if extras else ""))


def _figures(configs, results, faces, split, side, layers, device, out: Path) -> None:
    """Seed-0 models on the first held-out faces; VAE samples from one shared set of codes."""
    idx = split.eval[:N_FIGURE_FACES]
    originals = to_tensor(faces[idx])
    columns = []
    with torch.no_grad():
        for c in configs:
            model = results[c.key][0].model.eval()
            columns.append((c.key, model(originals.to(device)).cpu()))
    reconstruction_grid(originals, columns, out / "reconstructions.png",
                        "Held-out faces through each model (seed 0)")
    vaes = [c for c in configs if c.variational]
    if vaes:
        rows = []
        for c in vaes:
            gen = torch.Generator().manual_seed(0)
            model = results[c.key][0].model
            rows.append((c.key, model.sample(N_SAMPLES, side // 2 ** layers, gen).cpu()))
        sample_grid(rows, out / "vae_samples.png", "Faces decoded from z ~ N(0, I) (same z per column)")
