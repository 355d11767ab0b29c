"""Move a results file's cdcodec points to session 31's build fingerprint, without re-measuring them.

Until session 31 a cdcodec source's fingerprint (`params.build`) hashed every
byte of cdcodec's code and of trained/: a docstring edit, or shipping a second
model, made the default model's four hours of Kodak points unreusable. Since
then it hashes the code without docstrings and comments, and of trained/ only
the model the source measures (`bench/cdcodec_source.build_fingerprint`).

This rewrites the old fingerprints of a results file to the new ones, and only
when it can show that the points came from this build: the old fingerprint of
the files at `--measured-at` (a git commit) must be the one the file records,
and the checkout must differ from that commit, in every file the fingerprint
covers, at most in docstrings and comments (`cdcodec_source.normalised`). Any
other file is left untouched, with a message.

    python results/bench/refingerprint.py --measured-at 74fadc6^ \\
        results/bench/kodak.json results/bench/skimage.json
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from cdcodec.bench.cdcodec_source import BUILD_MODULES, build_fingerprint, module_files, normalised, package_versions


def git(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True).stdout


def module_folder(module: str, repo: Path) -> str:
    """The repository folder that holds `module` in this checkout (pyproject's package-dir)."""
    root = Path(importlib.util.find_spec(module).submodule_search_locations[0])
    return root.resolve().relative_to(repo.resolve()).as_posix()


def files_at(commit: str, repo: Path) -> dict[str, bytes]:
    """Name -> bytes of every file of BUILD_MODULES at `commit`, named as module_files names them."""
    files = {}
    for module in BUILD_MODULES:
        folder = module_folder(module, repo)
        for path in git(repo, "ls-tree", "-r", "--name-only", commit, "--", folder).decode().splitlines():
            files[f"{module}/{path[len(folder) + 1:]}"] = git(repo, "show", f"{commit}:{path}")
    return files


def files_now() -> dict[str, bytes]:
    return {name: path.read_bytes() for module in BUILD_MODULES for name, path in module_files(module)}


def whole_build_fingerprint(files: dict[str, bytes]) -> str:
    """The fingerprint as sessions up to 30 computed it: every byte of every file, in
    module_files' order, then the library versions."""
    def order(name: str):
        module, relative = name.split("/", 1)
        return BUILD_MODULES.index(module), relative.split("/")

    digest = hashlib.sha256()
    for name in sorted(files, key=order):
        digest.update(f"{name}\0".encode())
        digest.update(hashlib.sha256(files[name]).digest())
    digest.update(package_versions().encode())
    return digest.hexdigest()


def differences(then: dict[str, bytes], now: dict[str, bytes]) -> tuple[list[str], list[str]]:
    """(files that differ only in docstrings and comments, files that differ in more or exist in one only)."""
    docs, real = [], sorted(set(then) ^ set(now))
    for name in sorted(set(then) & set(now)):
        if then[name] != now[name]:
            (docs if normalised(name, then[name]) == normalised(name, now[name]) else real).append(name)
    return docs, real


def refingerprint(path: Path, measured: str) -> str:
    """Rewrite `path` in place if every cdcodec fingerprint in it is `measured`; says what it did."""
    doc = json.loads(path.read_text())
    sources = [c for c in doc.get("codecs", []) if c.get("params", {}).get("library") == "cdcodec"]
    builds = {c["params"].get("build") for c in sources}
    if not sources or builds != {measured}:
        return f"{path}: left as it is (its cdcodec fingerprints {sorted(map(str, builds))} are not {measured[:12]})"
    for source in sources:
        model = source["params"].get("model")
        source["params"]["build"] = build_fingerprint(None if model in (None, "default") else model)
    path.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    return f"{path}: " + ", ".join(f"{c['name']} {c['params']['build'][:12]}" for c in sources)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measured-at", required=True, help="git commit whose cdcodec made the points")
    parser.add_argument("results", nargs="+", type=Path)
    args = parser.parse_args()
    repo = Path(git(Path.cwd(), "rev-parse", "--show-toplevel").decode().strip())
    then = files_at(args.measured_at, repo)
    docs, real = differences(then, files_now())
    if real:
        print(f"the checkout differs from {args.measured_at} in more than documentation: {', '.join(real)}")
        return 1
    print(f"differs from {args.measured_at} in docstrings or comments only: {', '.join(docs) or 'nothing'}")
    measured = whole_build_fingerprint(then)
    print(f"old fingerprint at {args.measured_at}: {measured[:12]}")
    for path in args.results:
        print(refingerprint(path, measured))
    return 0


if __name__ == "__main__":
    sys.exit(main())
