"""A click group that imports its heavier subcommands only when they are used."""

from __future__ import annotations

import click

from .output import CliError


class LazyGroup(click.Group):
    """A group whose heavier subcommands are imported only when used.

    `cdcodec info` should not pay for importing torch, the benchmark's codecs or
    the paper experiments; --help still lists (and so imports) them all.
    """

    def __init__(self, *args, lazy: dict[str, tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx, name):
        if name in self.lazy and name not in self.commands:
            import importlib

            module, attr = self.lazy[name]
            try:
                self.add_command(getattr(importlib.import_module(module), attr), name=name)
            except ImportError as exc:
                raise CliError(f"the {name} command is unavailable: {exc}") from None
        return super().get_command(ctx, name)
