"""`cdcodec bench`: the click command that ties images, codecs, runner, report and plots together.

The summary table goes to stdout (it is the command's data); the progress bar,
skipped-codec notes and file paths go to stderr, so ``cdcodec bench > table.md`` works.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .bdrate import METHODS
from .images import bundled_images, folder_images
from .jsonfile import read_json, write_json
from .plots import write_plots
from .registry import ALL_SOURCES, DEFAULT_SOURCES, by_name
from .report import format_summary, summarise
from .run import describe_codec, results_document, reusable, run, split_available

DEFAULT_REFERENCE = "webp"


def _select(spec: str | None) -> list:
    if not spec:
        return list(DEFAULT_SOURCES)
    if spec.strip() == "all":
        return list(ALL_SOURCES)
    try:
        return by_name(list(dict.fromkeys(name.strip() for name in spec.split(",") if name.strip())))
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--codecs") from None


@click.command("bench")
@click.option("--images", "images_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of test images (default: photographs bundled with scikit-image).")
@click.option("--codecs", "codec_spec", metavar="LIST",
              help="Comma-separated codec names, or 'all' (default: all but "
                   f"{', '.join(s.name for s in ALL_SOURCES if s not in DEFAULT_SOURCES)}, the slowest encodes). "
                   f"Known: {', '.join(s.name for s in ALL_SOURCES)}.")
@click.option("--reference", default=DEFAULT_REFERENCE, show_default=True,
              help="Codec the BD-rates are measured against.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("bench-results.json"), show_default=True, help="JSON file with every measurement (gzip-compressed if the name ends in .gz).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("bench-rd.png"), show_default=True,
              help="Plot name; writes NAME-psnr.png, NAME-ssim.png and NAME-msssim.png.")
@click.option("--max-images", type=click.IntRange(min=1), help="Use only the first N images.")
@click.option("--reuse", "reuse_paths", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Earlier results JSON, plain or .gz (repeatable; a later file wins where two hold the same image and "
                   "codec): take over its measurements where codec settings, "
                   "images and library versions match; cdcodec's where its code, weights and numeric libraries "
                   "are byte-identical too (a stopped run resumes with --reuse OUT).")
@click.option("--bd-method", type=click.Choice(METHODS), default="pchip", show_default=True,
              help="BD-rate interpolation: piecewise-cubic Hermite or Bjøntegaard's cubic fit.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Measure this many images at once, each in its own process (set OMP_NUM_THREADS=1 "
                   "so that they do not also share threads). The records are those one process with the "
                   "same thread count makes; wall times per point are each process's own.")
def bench_command(images_dir, codec_spec, reference, out_path, plot_path, max_images, reuse_paths, bd_method, jobs):
    """Rate-distortion benchmark of cdcodec against JPEG, WebP, JPEG 2000, AVIF, JPEG XL and lossless codecs."""
    from tqdm import tqdm

    selected = _select(codec_spec)
    images = folder_images(images_dir) if images_dir else bundled_images()
    if max_images:
        images = images[:max_images]
    sources, skipped = split_available(selected)
    for skip in skipped:
        click.echo(f"skipped: {skip['label']} ({skip['reason']})", err=True)
    if reference not in {s.name for s in sources}:
        click.echo(f"note: reference codec {reference!r} is not running; BD-rates will be empty", err=True)

    reused: dict = {}
    for reuse_path in reuse_paths:
        try:
            earlier = read_json(reuse_path)
        except (OSError, EOFError, ValueError) as error:  # not gzip, cut short, not JSON
            raise click.ClickException(f"cannot read {reuse_path}: {error}") from None
        taken = reusable(earlier, images, sources)
        click.echo(f"reusing {len(taken)} (image, codec) measurements from {reuse_path}", err=True)
        reused.update(taken)

    options = {key: _plain(value) for key, value in click.get_current_context().params.items()}
    descriptions = [describe_codec(source) for source in sources]

    def document(measurements: list[dict], errors: list[dict], complete: bool) -> dict:
        done = {m["image"] for m in measurements} | {e["image"] for e in errors}
        finished = images if complete else [image for image in images if image.name in done]
        summary = summarise(measurements, descriptions, reference, bd_method)
        return results_document(finished, sources, skipped, measurements, errors, summary, options, complete)

    def checkpoint(measurements: list[dict], errors: list[dict]) -> None:
        """Save what is done so far: a long run that is stopped can be resumed with --reuse."""
        write_json(out_path, document(measurements, errors, complete=False))

    with tqdm(total=len(images) * len(sources), file=sys.stderr, unit="run", desc="bench") as bar:
        def step(what: str) -> None:
            bar.set_postfix_str(what, refresh=False)
            bar.update()

        measurements, errors = run(images, sources, step, reused, checkpoint, jobs)
    for error in errors:
        click.echo(f"error: {error['codec']} on {error['image']}: {error['error']}", err=True)

    final = document(measurements, errors, complete=True)
    write_json(out_path, final)
    click.echo(f"wrote {out_path}", err=True)
    for path in write_plots(final, plot_path):
        click.echo(f"wrote {path}", err=True)
    click.echo(format_summary(final))


def _plain(value):
    """A command-line value as JSON can hold it: paths as strings, repeated options as lists."""
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return str(value) if isinstance(value, Path) else value
