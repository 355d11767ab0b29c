"""Move a results file's cdcodec points to the current build fingerprint, without re-measuring them.

A cdcodec source's fingerprint (`params.build`) says which build made its
points, so that `bench --reuse` takes them over only from the same build. Its
scheme has been narrowed twice, each time after an edit had made the committed
Kodak run (hours of CPU) unreusable although its points had not changed:

- `--scheme whole` (session 31): until session 30 it hashed every byte of
  cdcodec's code and of trained/; since then the code without docstrings and
  comments, and of trained/ only the model the source measures.
- `--scheme tree` (session 33): until session 32 that tree covered the training
  code too (`codec/training/`), which encode and decode never import; since
  then it does not (`bench/cdcodec_source.is_fingerprinted`).

- `--scheme current`: the scheme has not changed, but the fingerprinted code
  has (session 34's lapped stages touched codec/stage.py, networks.py and
  exact.py; a stage without overlap computes what it did).

This rewrites the old fingerprints of a results file to the new ones, and only
when it can show that the points came from this build: the old fingerprint of
the files at `--measured-at` (a git commit) must be the one the file records,
and the checkout must differ from that commit, in every file the old
fingerprint covered, at most in docstrings and comments (`normalised`) or in
files the new one leaves out. Any other difference needs `--verify NAME`: the
image of that name is measured again by every cdcodec source of the file, and
every point must equal the recorded one in bytes and every quality measure.
A file that fails any check is left untouched, with a message.

    python results/bench/refingerprint.py --scheme whole --measured-at 74fadc6^ \\
        results/bench/kodak.json results/bench/skimage.json
    python results/bench/refingerprint.py --scheme tree --measured-at a38725a \\
        --verify kodim01 results/bench/kodak.json
    python results/bench/refingerprint.py --scheme current --measured-at 0a91e18 \\
        --verify kodim01 results/bench/kodak.json
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from cdcodec.bench.cdcodec_source import (
    BUILD_MODULES,
    build_fingerprint,
    is_fingerprinted,
    is_per_model,
    model_fingerprint,
    module_files,
    normalised,
    package_versions,
)
from cdcodec.bench.images import TestImage, as_rgb
from cdcodec.bench.jsonfile import read_json, write_json
from cdcodec.bench.registry import by_name
from cdcodec.bench.run import measure_source


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


def module_order(name: str):
    """Sort key that puts names in `module_files`' order (module by module, then by path parts)."""
    module, relative = name.split("/", 1)
    return BUILD_MODULES.index(module), relative.split("/")


def whole_build_fingerprint(files: dict[str, bytes]) -> str:
    """The fingerprint as sessions up to 30 computed it: every byte of every file, in
    module_files' order, then the library versions."""
    digest = hashlib.sha256()
    for name in sorted(files, key=module_order):
        digest.update(f"{name}\0".encode())
        digest.update(hashlib.sha256(files[name]).digest())
    digest.update(package_versions().encode())
    return digest.hexdigest()


def tree_fingerprint(files: dict[str, bytes], model: str | None) -> str | None:
    """The fingerprint as sessions 31 and 32 computed it: every file but a model's own
    (`normalised`), training code included, with the model's weights and search settings."""
    return model_fingerprint([(name, files[name]) for name in sorted(files, key=module_order) if not is_per_model(name)], model)


def current_fingerprint(files: dict[str, bytes], model: str | None) -> str | None:
    """The fingerprint as `build_fingerprint` computes it now, of the code in `files`."""
    return model_fingerprint([(name, files[name]) for name in sorted(files, key=module_order) if is_fingerprinted(name)], model)


def differences(then: dict[str, bytes], now: dict[str, bytes], left_out) -> tuple[list[str], list[str], list[str]]:
    """(files that differ only in docstrings and comments, files that differ but `left_out(name)`,
    files that differ in more or exist in one only)."""
    docs, outside, real = [], [], []
    for name in sorted(set(then) | set(now)):
        if then.get(name) == now.get(name):
            continue
        if left_out(name):
            outside.append(name)
        elif name in then and name in now and normalised(name, then[name]) == normalised(name, now[name]):
            docs.append(name)
        else:
            real.append(name)
    return docs, outside, real


def cdcodec_sources(doc: dict) -> list[dict]:
    return [c for c in doc.get("codecs", []) if c.get("params", {}).get("library") == "cdcodec"]


def model_of(source: dict) -> str | None:
    model = source["params"].get("model")
    return None if model in (None, "default") else model


def old_fingerprints_match(doc: dict, scheme: str, then: dict[str, bytes]) -> str | None:
    """None when every cdcodec source of `doc` records the fingerprint the files at the
    measured commit had under the old `scheme`; else what differs."""
    sources = cdcodec_sources(doc)
    if not sources:
        return "no cdcodec points"
    whole = whole_build_fingerprint(then) if scheme == "whole" else None  # one for every model
    for source in sources:
        old = whole or (current_fingerprint if scheme == "current" else tree_fingerprint)(then, model_of(source))
        if source["params"].get("build") != old:
            return f"{source['name']} records {str(source['params'].get('build'))[:12]}, not {str(old)[:12]}"
    return None


QUALITY_KEYS = ("setting", "bytes", "bpp", "bpsp", "psnr", "ssim", "ms_ssim", "max_abs_error")


def measured_again(doc: dict, name: str) -> str | None:
    """None when every cdcodec source of `doc`, run now on its image `name`, makes exactly the
    points the file records (bytes and every quality measure); else the first difference."""
    record = next((i for i in doc.get("images", []) if i["name"] == name), None)
    if record is None:
        return f"no image {name}"
    if record["source"].startswith("skimage.data."):
        import skimage.data

        pixels = getattr(skimage.data, record["source"].rpartition(".")[2])()
    else:
        with Image.open(record["source"]) as opened:
            pixels = np.asarray(opened.convert("RGB"))
    image = TestImage(name, as_rgb(pixels), record["source"])
    for source in cdcodec_sources(doc):
        recorded = [[m[k] for k in QUALITY_KEYS] for m in doc["measurements"] if (m["image"], m["codec"]) == (name, source["name"])]
        points, errors = measure_source(image, by_name([source["name"]])[0])
        if errors or [[m[k] for k in QUALITY_KEYS] for m in points] != recorded:
            return f"{source['name']} on {name} measures differently now ({errors or 'points differ'})"
        print(f"  {source['name']} on {name}: {len(points)} points as recorded", flush=True)
    return None


def refingerprint(path: Path, scheme: str, then: dict[str, bytes], verify: list[str]) -> str:
    """Rewrite `path` in place if its points provably came from this build; says what it did."""
    doc = read_json(path)
    problem = old_fingerprints_match(doc, scheme, then)
    for name in verify:
        problem = problem or measured_again(doc, name)
    if problem:
        return f"{path}: left as it is ({problem})"
    sources = cdcodec_sources(doc)
    for source in sources:
        source["params"]["build"] = build_fingerprint(model_of(source))
    write_json(path, doc)
    return f"{path}: " + ", ".join(f"{c['name']} {c['params']['build'][:12]}" for c in sources)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheme", choices=("whole", "tree", "current"), required=True, help="how the recorded fingerprints were computed")
    parser.add_argument("--measured-at", required=True, help="git commit whose cdcodec made the points")
    parser.add_argument("--verify", action="append", default=[], metavar="NAME",
                        help="an image of the results file to measure again; required when the code differs in more than documentation")
    parser.add_argument("results", nargs="+", type=Path)
    args = parser.parse_args()
    repo = Path(git(Path.cwd(), "rev-parse", "--show-toplevel").decode().strip())
    then = files_at(args.measured_at, repo)
    left_out = (lambda name: False) if args.scheme == "whole" else (lambda name: not is_fingerprinted(name))
    docs, outside, real = differences(then, files_now(), left_out)
    print(f"differs from {args.measured_at} in docstrings or comments only: {', '.join(docs) or 'nothing'}")
    if args.scheme != "whole":
        print(f"differs in files the new fingerprint leaves out: {', '.join(outside) or 'nothing'}")
    if real:
        print(f"differs in more: {', '.join(real)}")
        if not args.verify:
            print("so each results file needs --verify NAME (an image measured again, every point as recorded)")
            return 1
    for path in args.results:
        print(refingerprint(path, args.scheme, then, args.verify if real else []), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
