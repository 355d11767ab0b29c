"""Writing results safely and reporting failures the way the CLI promises.

- Outputs are written to a temporary file beside the target and renamed into
  place, so a failed or interrupted command never leaves a partial file.
- An existing output is only replaced with --force, and never when it is the input.
- Expected failures (bad input, corrupt files, unknown models) become one line
  on stderr and exit status 1; the traceback is shown only with --traceback.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import click

#: Exit statuses: 0 success, 1 bad or corrupt input, 2 usage error (click's own).
EXIT_BAD_INPUT = 1


class CliError(click.ClickException):
    """A one-line failure with exit status 1."""

    exit_code = EXIT_BAD_INPUT

    def show(self, file=None) -> None:
        click.echo(f"cdcodec: error: {self.format_message()}", err=True)


def check_output_path(output: Path, force: bool, *inputs: Path) -> None:
    for source in inputs:
        if output.exists() and source.exists() and output.resolve() == source.resolve():
            raise CliError(f"output {output} is the input file; choose another name")
    if output.exists() and not force:
        raise CliError(f"{output} exists (use --force to overwrite)")
    if output.exists() and output.is_dir():
        raise CliError(f"{output} is a directory")
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.is_dir():
        raise CliError(f"folder {parent} does not exist")


@contextmanager
def atomic_output(output: Path):
    """Yield a temporary path; rename it onto `output` only if the block succeeds."""
    parent = output.parent if str(output.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes_atomic(output: Path, data: bytes) -> None:
    with atomic_output(output) as tmp:
        tmp.write_bytes(data)


def read_input(path: Path, limit: int = 1 << 31) -> bytes:
    if not path.is_file():
        raise CliError(f"{path} is not a file")
    size = path.stat().st_size
    if size > limit:
        raise CliError(f"{path} is too large ({size} bytes)")
    return path.read_bytes()


def report(message: str) -> None:
    """Human-readable progress and statistics go to stderr; stdout stays for data."""
    click.echo(message, err=True)
