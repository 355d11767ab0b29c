"""The `cdcodec` command line: encode, decode, info, truncate, train, train-refine, train-stage, train-joint, refit-tables, add-quality, bench, experiment.

Exit status: 0 on success, 1 for bad or corrupt input (one line on stderr; the
traceback only with --traceback), 2 for usage errors. Statistics and progress
go to stderr; `info --json` prints JSON on stdout.
"""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path

import click

from ..bitstream import CdcFormatError
from ..bitstream import describe as describe_file
from ..bitstream import truncate as truncate_file
from ..codec.allocator import keep_freed_memory
from .lazy import LazyGroup
from .output import CliError, atomic_output, check_output_path, read_input, report, write_bytes_atomic

EXPECTED_ERRORS = (CdcFormatError, ValueError, LookupError, OSError)


def handle_errors(command):
    """Turn expected failures into a one-line message and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except click.ClickException:
            raise
        except EXPECTED_ERRORS as exc:
            ctx = click.get_current_context()
            if ctx.find_root().obj and ctx.find_root().obj.get("traceback"):
                import traceback

                traceback.print_exc()
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CliError(message) from None

    return wrapper


@click.group(
    cls=LazyGroup,
    lazy={"train": ("cdcodec.cli.train", "train"), "refit-tables": ("cdcodec.cli.train", "refit_tables"),
          "add-quality": ("cdcodec.cli.train", "add_quality"),
          "train-refine": ("cdcodec.cli.train", "train_refine"),
          "train-stage": ("cdcodec.cli.train", "train_stage"),
          "train-joint": ("cdcodec.cli.train", "train_joint"),
          "retire-model": ("cdcodec.cli.train", "retire_model_command"), "bench": ("cdcodec.bench.command", "bench_command")},
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="cdcodec")
@click.option("--traceback", is_flag=True, help="Show the full traceback when a command fails.")
@click.pass_context
def cli(ctx: click.Context, traceback: bool) -> None:
    """cdcodec: a progressive learned image codec.

    One encode gives many qualities: stage 1 is a coarse image, every further
    stage adds a coded residual, and any stage prefix of a .cdc file decodes.
    """
    ctx.obj = {"traceback": traceback}
    keep_freed_memory()


def _stages_option(help_text: str):
    return click.option("--stages", "-s", type=click.IntRange(min=1), default=None, help=help_text)


_force_option = click.option("--force", "-f", is_flag=True, help="Overwrite OUTPUT if it exists.")
_model_option = click.option(
    "--model", "model_id", default=None,
    help="Model id from trained/ (cdc-mix-19, the default, trained for squared error, then for a mix of it "
    "and MS-SSIM, stages 1 and 2 with overlapping kernels, quality levels 0-5; "
    "cdc-msssim-10, the MS-SSIM model: trained for MS-SSIM alone, stages 1 and 2 with overlapping kernels), or a "
    "path to a .safetensors weights file."
)


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.argument("output", type=click.Path(path_type=Path))
@_stages_option("Number of lossy cascade stages to write (default: all). Fewer stages: smaller file, coarser image.")
@click.option("--lossless", is_flag=True, help="Add a final stage so the file decodes to exactly the original pixels.")
@click.option(
    "--max-error",
    type=click.IntRange(1, 64),
    default=None,
    help="Add a final near-lossless stage: every decoded sample within D of the original (guaranteed).",
)
@click.option(
    "--quality",
    "-q",
    type=click.IntRange(min=0),
    default=None,
    help="Quality level: 0 is the coarsest; each level up makes every stage's quantizer finer by √2 "
    "(the default model has levels 0-5, cdc-msssim-10 levels 0-4; default: level 2, the one they were trained at).",
)
@click.option(
    "--effort",
    type=click.IntRange(0, 16),
    default=None,
    help="Encoder effort: rounds of rate-distortion search over each stage's symbols (default: 4; 0 with "
    "--lossless or --max-error, and above 4 megapixels, where the search's memory grows large). 0 rounds every latent value to the nearest integer, the fastest encode; "
    "each round moves symbols by ±1 where that lowers bits + λ·distortion. More rounds: fewer bits for "
    "the same quality and a slower encode; decoding is the same.",
)
@click.option(
    "--tune",
    type=click.Choice(["model", "psnr"]),
    default="model",
    show_default=True,
    help="What the search (--effort) weighs as distortion: 'model', what the model was trained for (the "
    "default model: 70% squared error, 30% MS-SSIM; cdc-msssim-10: MS-SSIM; a weights file whose model "
    "trained/manifest.json does not know: squared error, as 'psnr'); 'psnr', squared error alone: "
    "fewer bits than 'model' at equal PSNR, and a lower MS-SSIM.",
)
@click.option(
    "--temper/--no-temper",
    default=True,
    show_default=True,
    help="Let each stage re-shape its fixed probability tables, channel by channel, to fit this image, "
    "where that saves more bits than saying so costs: the same pixels at a lower rate (1-4% lower on "
    "Kodak and the scikit-image photos) for a few seconds more encoding. --no-temper writes files that "
    "decoders older than this option (session 60) can read.",
)
@_model_option
@_force_option
@handle_errors
def encode(
    input_path: Path,
    output: Path,
    stages: int | None,
    lossless: bool,
    max_error: int | None,
    quality: int | None,
    effort: int | None,
    tune: str,
    temper: bool,
    model_id: str | None,
    force: bool,
) -> None:
    """Compress an image (any Pillow-readable file) into a .cdc file.

    A photo's EXIF orientation is applied to its pixels. A colour profile is not
    kept (a warning says so when it is not sRGB), and of several frames only the
    first is coded (a warning says so too).

    Without --lossless or --max-error the file holds only lossy stages; with
    either, `decode` gives the exact (or within-D) image while `decode --stages K`
    still gives lossy stage K. The smallest exact files sit on one coarse lossy
    stage: --lossless --stages 1 --quality 0.
    """
    from ..codec.images import NotKeptWarning, load_image
    from ..codec.pipeline import encode as encode_image

    if lossless and max_error is not None:
        raise click.UsageError("--lossless and --max-error exclude each other")
    if not input_path.is_file():
        raise CliError(f"{input_path} is not a file")
    check_output_path(output, force, input_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NotKeptWarning)
        pixels = load_image(input_path)
    for warning in caught:
        report(f"cdcodec: warning: {str(warning.message).strip()}")
    data = encode_image(
        pixels, stages=stages, model=model_id, lossless=lossless, max_error=max_error, quality=quality, search_rounds=effort,
        tune=tune, temper=temper,
    )
    write_bytes_atomic(output, data)
    _report_sizes(data)


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.argument("output", type=click.Path(path_type=Path))
@_stages_option("Decode only the first K stages (default: every stage in the file).")
@click.option("--model", "model_id", default=None, help="Weights file to decode with (default: the model the file names, from trained/).")
@_force_option
@handle_errors
def decode(input_path: Path, output: Path, stages: int | None, model_id: str | None, force: bool) -> None:
    """Decompress a .cdc file to an image: PNG, or BMP, PPM/PNM or TIFF by OUTPUT's suffix."""
    from ..codec.images import output_format, save_image
    from ..codec.pipeline import decode as decode_image

    data = read_input(input_path)
    image_format = output_format(output)
    check_output_path(output, force, input_path)
    pixels = decode_image(data, stages=stages, model=model_id)
    with atomic_output(output) as tmp:
        save_image(pixels, tmp, image_format)
    info = describe_file(data)
    used = info["stages_present"] if stages is None else stages
    report(f"decoded {info['width']}x{info['height']} using {used} of {info['stages_present']} stages")


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON on stdout.")
@handle_errors
def info(input_path: Path, as_json: bool) -> None:
    """Describe a .cdc file: geometry, model, stages and their sizes."""
    data = read_input(input_path)
    desc = describe_file(data)
    if as_json:
        click.echo(json.dumps(desc, indent=2))
        return
    click.echo(f"{input_path}: {desc['width']}x{desc['height']}, {desc['channels']} channel(s), {desc['bit_depth']}-bit")
    click.echo(f"model: {desc['model_id']} (weights sha256 {desc['weights_sha256'][:16]}...)")
    click.echo(f"stages: {desc['stages_present']} present of {desc['stages_announced']} written")
    click.echo(f"header: {desc['header_bytes']} bytes")
    for stage in desc["stages"]:
        extra = {"near_lossless": f", max error {stage['param']}", "latent": f", quality level {stage['param']}"}
        kind = stage["kind"] + extra.get(stage["kind"], "")
        if stage["present"]:
            post_filter = ""
            if stage.get("post_filter", "none") != "none":
                post_filter = f", post-filter '{stage['post_filter']}' in {stage['post_filter_bytes']} bytes"
            if stage.get("tempered_tables"):
                post_filter += ", tempered tables"
            click.echo(
                f"  stage {stage['stage']} ({kind}{post_filter}): {stage['bytes']} bytes, "
                f"cumulative {stage['cumulative_bytes']} bytes = {stage['cumulative_bpp']:.4f} bpp"
            )
        else:
            click.echo(f"  stage {stage['stage']} ({kind}): not in this file")
    click.echo(f"total: {desc['file_bytes']} bytes, {desc['bpp']:.4f} bpp")


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--stages", "-s", type=click.IntRange(min=1), required=True, help="How many stages to keep.")
@_force_option
@handle_errors
def truncate(input_path: Path, output: Path, stages: int, force: bool) -> None:
    """Write the first K stages of a .cdc file: a smaller, valid file (a byte prefix)."""
    data = read_input(input_path)
    check_output_path(output, force, input_path)
    prefix = truncate_file(data, stages)
    write_bytes_atomic(output, prefix)
    _report_sizes(prefix)


def _report_sizes(data: bytes) -> None:
    info = describe_file(data)
    sizes = ", ".join(f"stage {s['stage']} {s['bytes']} B" for s in info["stages"] if s["present"])
    bpp = 8 * info["file_bytes"] / (info["width"] * info["height"])  # not info["bpp"]: already rounded to 5 places
    report(f"{info['file_bytes']} bytes, {bpp:.4f} bpp ({info['width']}x{info['height']}); {sizes}")


@cli.group(
    cls=LazyGroup,
    lazy={
        "cascade": ("cdcodec.experiments.cascade.cli", "cascade_command"),
        "cascade-merge": ("cdcodec.experiments.cascade.cli", "cascade_merge_command"),
        "cascade-parts": ("cdcodec.experiments.cascade.cli", "cascade_parts_command"),
        "recursive": ("cdcodec.experiments.recursive.cli", "recursive_command"),
        "codec-study": ("cdcodec.experiments.codec_study.cli", "codec_study_command"),
    },
)
def experiment() -> None:
    """Reproduce the papers cdcodec grows out of, and study the codec's own training (codec-study)."""


def main() -> None:
    cli(prog_name="cdcodec")
