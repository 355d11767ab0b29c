"""The import direction cli -> codec -> bitstream, and a torch-free bitstream."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "bitstream": ("cdcodec.codec", "cdcodec.cli", "torch", "..codec", "..cli"),
    "codec": ("cdcodec.cli", "..cli", "...cli"),
}


def imported_names(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append("." * node.level + (node.module or ""))
    return names


def test_layers_import_only_downwards():
    for folder, forbidden in FORBIDDEN.items():
        for path in (ROOT / folder).rglob("*.py"):
            for name in imported_names(path):
                assert not name.startswith(forbidden), f"{path.relative_to(ROOT)} imports {name}"


def test_bitstream_does_not_import_torch():
    code = "import sys, cdcodec.bitstream, cdcodec; cdcodec.describe; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
