"""Symbol tables survive the weights file exactly, in its compact layout."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from cdcodec.bitstream import SymbolTables, tables_from_counts
from cdcodec.bitstream.contexts import CONTEXTS
from cdcodec.codec.weights import ModelNotFoundError, tables_from_tensors, tables_to_tensors


def tables(per_row_ranges: bool) -> SymbolTables:
    rows = 3 * CONTEXTS
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 500, size=(rows, 12)).astype(float)
    if per_row_ranges:
        offsets, sizes = rng.integers(-6, 1, rows), rng.integers(1, 13, rows)
    else:  # as fitted: one value range per channel, shared by its context rows
        offsets, sizes = np.repeat([-5, -2, 0], CONTEXTS), np.repeat([11, 5, 1], CONTEXTS)
    return tables_from_counts(counts, offsets, sizes, contexts=CONTEXTS)


def same(a: SymbolTables, b: SymbolTables) -> bool:
    used = all(np.array_equal(a.pmfs[r, : a.sizes[r] + 1], b.pmfs[r, : b.sizes[r] + 1]) for r in range(len(a.sizes)))
    return used and a.contexts == b.contexts and np.array_equal(a.offsets, b.offsets) and np.array_equal(a.sizes, b.sizes)


@pytest.mark.parametrize("per_row_ranges", [False, True])
def test_tables_round_trip(per_row_ranges):
    original = tables(per_row_ranges)
    tensors = tables_to_tensors(original, "t")
    assert tensors["t.freqs"].dtype == torch.uint16
    assert tensors["t.layout"].tolist() == [CONTEXTS, int(not per_row_ranges)]
    # Shared ranges are stored once per channel, not once per (channel, context) row.
    assert tensors["t.offsets"].shape[0] == (len(original.sizes) if per_row_ranges else original.channels)
    assert same(tables_from_tensors(tensors, "t"), original)


def test_sign_alignment_survives_the_file_and_a_layout_it_does_not_know_is_refused():
    plain = tables(False)
    tensors = tables_to_tensors(SymbolTables(plain.offsets, plain.sizes, plain.pmfs, CONTEXTS, sign_aligned=True), "t")
    assert tensors["t.layout"].tolist() == [CONTEXTS, 1, 1]
    back = tables_from_tensors(tensors, "t")
    assert back.sign_aligned and same(back, plain)
    assert not tables_from_tensors(tables_to_tensors(plain, "t"), "t").sign_aligned
    for layout in ([CONTEXTS, 1, 2], [CONTEXTS, 1, 1, 1]):
        with pytest.raises(ModelNotFoundError, match="inconsistent"):
            tables_from_tensors(dict(tensors, **{"t.layout": torch.tensor(layout)}), "t")


def test_tables_from_an_older_or_damaged_file_are_refused_with_the_fix():
    tensors = tables_to_tensors(tables(False), "t")
    old = {k: v for k, v in tensors.items() if k != "t.layout"}
    with pytest.raises(ModelNotFoundError, match="refit-tables"):
        tables_from_tensors(old, "t")
    for name, damaged in (("t.freqs", tensors["t.freqs"][:-1]), ("t.layout", torch.tensor([0, 1])), ("t.layout", torch.tensor([160]))):
        with pytest.raises(ModelNotFoundError, match="inconsistent"):
            tables_from_tensors(dict(tensors, **{name: damaged}), "t")


def test_installing_a_retired_id_again_ships_it_and_unretires_it(tmp_path, tiny_weights, monkeypatch):
    """install_model keeps one record per id: shipped again, a model leaves the retired list."""
    import json

    from cdcodec.cli.train import install_model
    from cdcodec.codec import weights

    monkeypatch.setattr(weights, "trained_dir", lambda: tmp_path)
    record = {"id": "tiny", "file": "tiny-0.safetensors", "weights_commit": "0" * 40, "training": {}}
    (tmp_path / weights.MANIFEST).write_text(json.dumps({"default": None, "models": [], "retired": [record]}))
    with pytest.raises(ModelNotFoundError, match="no longer shipped"):
        weights.manifest_entry("tiny")
    config = weights.load_codec(tiny_weights)[0].config.to_dict()
    install_model(tiny_weights, "tiny", config, {"command": "test"}, make_default=True)
    manifest = weights.read_manifest()
    assert manifest["retired"] == [] and weights.manifest_entry("tiny")["training"] == {"command": "test"}
    assert weights.model_record("tiny")["file"] == manifest["models"][0]["file"]


@pytest.mark.skipif(shutil.which("git") is None, reason="retiring a model records a git commit; git is not installed")
def test_retire_model_keeps_the_record_and_the_commit_that_holds_the_weights(tmp_path, tiny_weights, monkeypatch):
    """cdcodec retire-model: refuses what would lose the weights or leave no default, then retires cleanly."""
    import json
    import subprocess

    from click.testing import CliRunner

    from cdcodec.cli.main import cli
    from cdcodec.cli.train import install_model
    from cdcodec.codec import weights

    folder = tmp_path / "trained"
    folder.mkdir()
    monkeypatch.setattr(weights, "trained_dir", lambda: folder)
    (folder / weights.MANIFEST).write_text(json.dumps({"default": None, "models": []}))
    config = weights.load_codec(tiny_weights)[0].config.to_dict()
    old = install_model(tiny_weights, "tiny", config, {"command": "test"}, make_default=True)
    newer = folder / "newer.safetensors"
    shutil.copyfile(tiny_weights, newer)
    newer.write_bytes(newer.read_bytes() + b" ")  # another digest, so another file
    install_model(newer, "tiny-2", config, {"command": "test"}, make_default=False)
    newer.unlink()
    git = lambda *args: subprocess.run(["git", "-C", str(tmp_path), *args], capture_output=True, check=True, text=True).stdout.strip()
    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "empty")
    before = (folder / weights.MANIFEST).read_text()
    retire = lambda *args: CliRunner().invoke(cli, ["retire-model", "tiny", *args])

    result = retire("--replaced-by", "tiny-2")  # HEAD does not hold the weights yet
    assert result.exit_code == 1 and "does not hold the manifest's" in result.stderr
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "ship")
    head = git("rev-parse", "HEAD")
    for args, message in ((), "is the default model"), (("--replaced-by", "nope"), "not another shipped model"), (("--weights-commit", "nope"), "not a commit"):
        result = retire(*args)
        assert result.exit_code == 1 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert (folder / weights.MANIFEST).read_text() == before and old.is_file()

    result = retire("--replaced-by", "tiny-2")
    assert result.exit_code == 0, result.output
    manifest = weights.read_manifest()
    assert manifest["default"] == "tiny-2" and [m["id"] for m in manifest["models"]] == ["tiny-2"]
    record = manifest["retired"][0]
    assert record["id"] == "tiny" and record["weights_commit"] == head and record["replaced_by"] == "tiny-2"
    assert record["training"] == {"command": "test"} and not old.exists()
    with pytest.raises(ModelNotFoundError, match=f"git show {head[:12]}:trained/{old.name}"):
        weights.manifest_entry("tiny")
    git("checkout", "-q", head, "--", f"trained/{old.name}")  # what the error message tells a user to do
    assert weights.file_digest(old) == record["sha256"]



@pytest.mark.parametrize(
    "settings, share",
    [({"metric": "mse"}, 0.0), ({"metric": "ms-ssim", "ms_ssim_share": 0.5}, 1.0), ({"metric": "mixed", "ms_ssim_share": 0.3}, 0.3), ({}, 0.0)],
)
def test_the_search_weighs_what_a_model_was_trained_for(monkeypatch, settings, share):
    from cdcodec.codec import weights

    monkeypatch.setattr(weights, "model_record", lambda model_id: {"id": model_id, "training": {"settings": settings}})
    assert weights.trained_ms_ssim_share("some-model") == share


def test_an_unknown_model_is_searched_for_squared_error():
    from cdcodec.codec.weights import trained_ms_ssim_share

    assert trained_ms_ssim_share("no-such-model") == 0.0
