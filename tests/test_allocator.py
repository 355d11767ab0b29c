"""keep_freed_memory: large blocks come from the reusable heap, not fresh mappings, and the CLI asks for it."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from cdcodec.cli import main as cli_main

glibc_only = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="mallopt and mallinfo2 are glibc's")

# Run in a fresh interpreter: mallopt changes the whole process.
_PROBE = textwrap.dedent("""
    import ctypes, sys
    import numpy as np
    from cdcodec.codec.allocator import keep_freed_memory

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    applied = keep_freed_memory() if sys.argv[1] == "keep" else None
    before = libc.mallinfo2().hblkhd
    block = np.empty(64 * 2**20, dtype=np.uint8)  # above glibc's largest mmap threshold
    mapped = libc.mallinfo2().hblkhd - before
    del block
    heap_kept = libc.mallinfo2().fordblks
    print(applied, mapped, heap_kept)
""")


def _probe(mode: str) -> tuple[str, int, int]:
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True).stdout.split()
    return out[0], int(out[1]), int(out[2])


@glibc_only
def test_large_blocks_are_mapped_afresh_by_default():
    _, mapped, _ = _probe("default")
    assert mapped >= 64 * 2**20


@glibc_only
def test_keep_freed_memory_serves_large_blocks_from_the_heap_and_keeps_them():
    applied, mapped, heap_kept = _probe("keep")
    assert applied == "True"
    assert mapped == 0
    assert heap_kept >= 64 * 2**20  # freed, still in the process for the next tensor


@glibc_only
def test_the_environment_turns_it_off(monkeypatch):
    monkeypatch.setenv("CDCODEC_KEEP_FREED_MEMORY", "0")
    applied, mapped, _ = _probe("keep")
    assert applied == "False"
    assert mapped >= 64 * 2**20


def test_every_cli_command_asks_for_it_first(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(cli_main, "keep_freed_memory", lambda: calls.append(True))
    result = CliRunner().invoke(cli_main.cli, ["info", str(tmp_path / "missing.cdc")])
    assert result.exit_code != 0  # the command itself fails on the missing file; the setting came first
    assert calls == [True]
