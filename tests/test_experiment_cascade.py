"""Tests of the cascade-decoder paper reproduction (experiments/cascade).

All data here is synthetic and tiny, so the file runs in seconds and needs no
../shared folder.
"""

from __future__ import annotations

import gzip
import json
import struct
from dataclasses import replace

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cdcodec.bitstream import encode_latent
from cdcodec.experiments.cascade import algorithms as algs
from cdcodec.experiments.cascade.cache import RunCache
from cdcodec.experiments.cascade.cli import cascade_command, cascade_merge_command, cascade_parts_command
from cdcodec.experiments.cascade.config import TrainConfig
from cdcodec.experiments.cascade.data import load_dataset, load_images, read_idx
from cdcodec.experiments.cascade.evaluate import ssim_per_image, stage_psnrs
from cdcodec.experiments.cascade.models import CascadeAutoencoder, Decoder, Discriminator, Encoder
from cdcodec.experiments.cascade.merge import stage1_mismatch
from cdcodec.experiments.cascade.parts import SKIPPED, PartJob, plan, run_parts
from cdcodec.experiments.cascade.rate import Quantizer, RateReport, fit_tables, measure_rate
from cdcodec.experiments.cascade.runner import RunResult, load_cached
from cdcodec.experiments.cascade.summary import delta_sign
from cdcodec.experiments.cascade.training import build_base, train_base, train_later_stage

SMALL = replace(TrainConfig(), hidden=16, disc_hidden=8, batch_size=20, lr=1e-3)


def _images(n: int, seed: int = 0) -> np.ndarray:
    """uint8 (n, 28, 28): a bright square at a random place on a dark background."""
    rng = np.random.default_rng(seed)
    out = rng.integers(0, 40, size=(n, 28, 28), dtype=np.uint8)
    for img in out:
        r, c = rng.integers(2, 18, size=2)
        img[r : r + 8, c : c + 8] = 220
    return out


def _unit(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 127.5 - 1.0)


def _write_idx(path, array: np.ndarray, compress: bool = True) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    blob = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(blob) if compress else blob)


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


# --- models -----------------------------------------------------------------


def test_network_shapes_and_ranges():
    x = torch.rand(5, 784) * 2 - 1
    enc, venc = Encoder(SMALL), Encoder(SMALL, variational=True)
    assert enc(x).shape == (5, 30)
    mean, logvar = venc.moments(x)
    assert mean.shape == logvar.shape == (5, 30)
    assert torch.equal(venc(x), mean)  # a VAE transmits its mean
    y = Decoder(SMALL, 30)(enc(x))
    assert y.shape == (5, 784) and y.abs().max() <= 1
    p = Discriminator(SMALL, 784)(y)
    assert p.shape == (5,) and ((p > 0) & (p < 1)).all()
    model = CascadeAutoencoder(enc, [Decoder(SMALL, 30), Decoder(SMALL, 784), Decoder(SMALL, 784)], residual=False)
    assert [s.shape for s in model(x)] == [(5, 784)] * 3


@pytest.mark.parametrize("residual", [True, False])
def test_cascade_stage_composition(residual):
    torch.manual_seed(0)
    decoders = [Decoder(SMALL, 30), Decoder(SMALL, 784), Decoder(SMALL, 784)]
    model = CascadeAutoencoder(Encoder(SMALL), decoders, residual=residual)
    z = torch.randn(4, 30)
    y1, y2, y3 = model.decode_stages(z)
    assert torch.allclose(y1, decoders[0](z))
    if residual:  # each later decoder adds a correction to the previous output
        assert torch.allclose(y2, y1 + decoders[1](y1))
        assert torch.allclose(y3, y2 + decoders[2](y2))
    else:  # each later decoder replaces it
        assert torch.allclose(y2, decoders[1](y1))
        assert torch.allclose(y3, decoders[2](y2))


def test_algorithm_table_and_selection():
    assert [a.name for a in algs.PAPER_ALGORITHMS] == [
        "AE", "GCDAE", "RCDAE", "ACDAE", "RACDAE", "AAE", "GCDAAE", "RCDAAE", "ACDAAE", "RACDAAE",
    ]
    assert {a.base for a in algs.EXTENDED_ALGORITHMS} == {"vae", "wae"}
    racd = algs.BY_NAME["RACDAAE"]
    assert racd.base == "aae" and racd.residual and racd.adversarial
    assert [a.name for a in algs.select("RCDAE")] == ["AE", "RCDAE"]  # AE always kept, table order
    assert len(algs.select("all")) == 20
    with pytest.raises(ValueError):
        algs.select("XYZ")


# --- training ---------------------------------------------------------------


@pytest.mark.parametrize("base", ["aae", "vae", "wae"])
def test_base_training_lowers_reconstruction_error(base):
    x = _unit(_images(60))
    alg = algs.BY_NAME[base.upper()]
    model = build_base(alg, SMALL, seed=0)
    before = torch.mean((model(x)[0] - x) ** 2).item()
    train_base(model, alg, x, SMALL, seed=0, epochs=3)
    after = torch.mean((model(x)[0] - x) ** 2).item()
    assert after < before


def test_later_stages_train_only_the_new_decoder():
    x = _unit(_images(60))
    alg = algs.BY_NAME["RACDAE"]  # residual + adversarial: the most moving parts
    model = build_base(alg, SMALL, seed=0)
    train_base(model, alg, x, SMALL, seed=0, epochs=2)
    enc0, dec1 = _params(model.encoder), _params(model.decoders[0])

    dec2, _ = train_later_stage(model, alg, x, SMALL, seed=0, epochs=2)
    assert _same(enc0, _params(model.encoder)) and _same(dec1, _params(model.decoders[0]))
    dec2_after_stage2 = _params(dec2)

    train_later_stage(model, alg, x, SMALL, seed=0, epochs=2)
    assert len(model.decoders) == 3
    assert _same(enc0, _params(model.encoder))
    assert _same(dec1, _params(model.decoders[0]))
    assert _same(dec2_after_stage2, _params(model.decoders[1]))
    assert not all(p.requires_grad for p in model.decoders[0].parameters())


def test_residual_stage_improves_on_its_base():
    x = _unit(_images(80))
    alg = algs.BY_NAME["RCDAE"]
    model = build_base(alg, SMALL, seed=1)
    train_base(model, alg, x, SMALL, seed=1, epochs=5)
    train_later_stage(model, alg, x, SMALL, seed=1, epochs=10)
    with torch.no_grad():
        y1, y2 = model(x)
    assert torch.mean((y2 - x) ** 2) < torch.mean((y1 - x) ** 2)


class _MemoryStore:
    def __init__(self):
        self.state = None

    def load(self):
        return self.state

    def save(self, state):
        self.state = {"epoch": state["epoch"], "seconds": state["seconds"], "modules": {k: {n: t.clone() for n, t in v.items()} for k, v in state["modules"].items()},
                      "optimizers": state["optimizers"]}


def test_resumed_training_matches_uninterrupted():
    x = _unit(_images(60))
    alg = algs.BY_NAME["AAE"]
    straight = build_base(alg, SMALL, seed=3)
    train_base(straight, alg, x, SMALL, seed=3, epochs=3)

    store = _MemoryStore()
    first = build_base(alg, SMALL, seed=3)
    first_seconds = train_base(first, alg, x, SMALL, seed=3, epochs=2, store=store)  # "interrupted" after 2 epochs
    resumed = build_base(alg, SMALL, seed=3)
    total_seconds = train_base(resumed, alg, x, SMALL, seed=3, epochs=3, store=store)
    assert store.state["epoch"] == 3
    # The resumed run reports the whole stage's training time, the interrupted run's included.
    assert total_seconds == store.state["seconds"] and total_seconds > first_seconds > 0
    # A checkpoint from before times were kept: the stage's time is unknown, not undercounted.
    store.state.pop("seconds")
    store.state["epoch"] = 2
    assert train_base(build_base(alg, SMALL, seed=3), alg, x, SMALL, seed=3, epochs=3, store=store) is None
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


# --- data -------------------------------------------------------------------


@pytest.mark.parametrize("compress", [True, False])
def test_idx_loader(tmp_path, compress):
    images = _images(3)
    path = tmp_path / ("imgs.gz" if compress else "imgs")
    _write_idx(path, images, compress)
    assert np.array_equal(read_idx(path), images)
    flat = load_images(path)
    assert flat.shape == (3, 784) and flat.dtype == np.float32
    assert np.allclose(flat, images.reshape(3, -1) / 127.5 - 1.0)
    assert flat.min() >= -1 and flat.max() <= 1


def test_idx_loader_rejects_garbage(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x08\x03" + b"\x00" * 20)
    with pytest.raises(ValueError):
        read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(struct.pack(">BBBBIII", 0, 0, 8, 3, 2, 28, 28) + b"\x00" * 10)
    with pytest.raises(ValueError):
        read_idx(short)


def test_medmnist_loader(tmp_path):
    (tmp_path / "medmnist").mkdir()
    train, test = _images(5, seed=1), _images(2, seed=2)
    np.savez(tmp_path / "medmnist" / "breastmnist.npz", train_images=train, val_images=train[:1], test_images=test,
             train_labels=np.zeros(5), test_labels=np.zeros(2))
    splits = load_dataset("breastmnist", tmp_path)
    assert splits.train.shape == (5, 784) and splits.test.shape == (2, 784)
    assert np.allclose(splits.test, test.reshape(2, -1) / 127.5 - 1.0)
    with pytest.raises(FileNotFoundError):
        load_dataset("mnist", tmp_path)


# --- evaluation and rate ----------------------------------------------------


def test_ssim_of_identical_and_different_images():
    x = _unit(_images(4)).numpy()
    assert np.allclose(ssim_per_image(x, x), 1.0)
    noisy = np.clip(x + np.random.default_rng(0).normal(0, 0.3, x.shape), -1, 1)
    assert (ssim_per_image(x, noisy) < 0.9).all()


def test_stage_psnr_on_eight_bit_pixels():
    x = _unit(_images(4)).numpy()
    assert stage_psnrs(x, [x]) == [float("inf")]
    pixels = (x + 1.0) * 127.5
    off_by_two = np.where(pixels > 127, pixels - 2, pixels + 2) / 127.5 - 1.0  # every pixel 2 levels off
    assert np.isclose(stage_psnrs(x, [off_by_two])[0], 10 * np.log10(255.0**2 / 4), atol=0.2)


def test_rate_coding_round_trips_and_counts_real_bytes():
    rng = np.random.default_rng(0)
    z_train = rng.normal(0, [1.0, 3.0, 0.1], size=(500, 3))
    z_test = rng.normal(0, [1.0, 3.0, 0.1], size=(50, 3))
    z_test[0] = [40.0, -60.0, 5.0]  # far outside the training range: escape-coded
    quant = Quantizer.fit(z_train, step_scale=0.25)
    tables = fit_tables(quant.symbols(z_train))
    symbols = quant.symbols(z_test)
    assert symbols.shape == (3, 50)
    report = measure_rate(tables, symbols, single_limit=10)
    assert report.roundtrip_ok
    assert report.bits_per_image == 8 * len(encode_latent(symbols, tables)) / 50
    assert report.single_images == 10 and report.bits_per_image_single >= 32  # whole 32-bit words
    # dequantization error is at most half a step per channel
    assert np.all(np.abs(quant.values(symbols) - z_test) <= quant.steps / 2 + 1e-5)
    # a finer step costs more bits
    fine = Quantizer.fit(z_train, step_scale=0.05)
    fine_report = measure_rate(fit_tables(fine.symbols(z_train)), fine.symbols(z_test), single_limit=0)
    assert fine_report.bits_per_image > report.bits_per_image


def test_delta_sign_needs_consistent_seeds():
    assert delta_sign([0.010, 0.011, 0.012]) == "+"
    assert delta_sign([-0.010, -0.011, -0.012]) == "-"
    assert delta_sign([0.010, -0.009, 0.002]) == ""
    assert delta_sign([0.01]) == ""


# --- the command ------------------------------------------------------------


def _fake_mnist(root, train: int, test: int, seed: int):
    """A data folder with a small random MNIST (IDX files) under `root`/mnist."""
    data = root / "mnist"
    data.mkdir(parents=True)
    _write_idx(data / "train-images-idx3-ubyte.gz", _images(train, seed=seed))
    _write_idx(data / "t10k-images-idx3-ubyte.gz", _images(test, seed=seed + 1))


def test_command_runs_all_ten_paper_algorithms(tmp_path):
    _fake_mnist(tmp_path / "data", 60, 12, seed=4)
    args = ["--dataset", "mnist", "--data-dir", str(tmp_path / "data"), "--epochs", "1", "--seeds", "2",
            "--hidden", "8", "--algorithms", "paper", "--out", str(tmp_path / "out"),
            "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"]
    result = CliRunner().invoke(cascade_command, args)
    assert result.exit_code == 0, result.output
    table, per_stage = result.stdout.split("Per stage, mean over seeds")
    table_names = [line.split()[0] for line in table.splitlines() if line and line.split()[0] in algs.BY_NAME]
    assert table_names == [a.name for a in algs.PAPER_ALGORITHMS]
    stage_lines = {line.split()[0]: line for line in per_stage.splitlines()[1:] if line}
    assert list(stage_lines) == table_names
    assert stage_lines["RCDAE"].split("|")[1].count("->") == 2  # three stages of PSNR
    assert stage_lines["AE"].split("|")[1].count("->") == 0
    assert "fewer than the paper's 100" in result.stdout
    record = json.loads((tmp_path / "out" / "mnist-e1.json").read_text())
    assert record["epochs_per_stage"] == 1 and record["seeds"] == [0, 1]
    assert {r["algorithm"] for r in record["summary"]} == {a.name for a in algs.PAPER_ALGORITHMS}
    assert all(r["rate"]["roundtrip_ok"] for r in record["runs"])
    assert (tmp_path / "out" / "mnist-e1.png").stat().st_size > 0

    # A rerun takes every stage from the cache and gives the same numbers.
    again = CliRunner().invoke(cascade_command, args)
    assert again.exit_code == 0
    assert "trained in" not in again.stderr and "cached" in again.stderr
    assert json.loads((tmp_path / "out" / "mnist-e1.json").read_text())["summary"] == record["summary"]

    # The analyses in results/cascade/ load finished models from the cache: the same numbers again.
    splits = load_dataset("mnist", tmp_path / "data")
    cfg = replace(TrainConfig(), hidden=8)
    cache = RunCache.for_run(tmp_path / "cache", splits, cfg.key(), 1)
    model = load_cached(algs.BY_NAME["RCDAE"], cfg, cache, 0)
    with torch.no_grad():
        stages = model(torch.from_numpy(splits.test))
    run = next(r for r in record["runs"] if r["algorithm"] == "RCDAE" and r["seed"] == 0)
    assert [float(ssim_per_image(splits.test, s.numpy()).mean()) for s in stages] == pytest.approx(run["stage_ssim"], abs=1e-9)
    assert load_cached(algs.BY_NAME["RCDAE"], cfg, cache, seed=7) is None  # never trained


def test_seed_option_splits_a_run_over_processes_sharing_the_cache(tmp_path):
    _fake_mnist(tmp_path / "data", 40, 8, seed=6)
    common = ["--dataset", "mnist", "--data-dir", str(tmp_path / "data"), "--epochs", "1", "--hidden", "8",
              "--algorithms", "AE,RCDAE", "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"]
    alone = CliRunner().invoke(cascade_command, [*common, "--seed", "1", "--out", str(tmp_path / "one")])
    assert alone.exit_code == 0, alone.output
    one = json.loads((tmp_path / "one" / "mnist-e1.json").read_text())
    assert one["seeds"] == [1] and {r["seed"] for r in one["runs"]} == {1}
    assert "--seed 1" in one["command"]

    # The full run finds seed 1 finished in the cache, trains only seed 0, and scores seed 1 the same.
    full = CliRunner().invoke(cascade_command, [*common, "--seeds", "2", "--out", str(tmp_path / "both")])
    assert full.exit_code == 0, full.output
    assert "seed 1 AE stage 1: cached" in full.stderr and "seed 0 AE stage 1: trained" in full.stderr
    assert "seed 1 RCDAE stage 2: cached" in full.stderr
    both = json.loads((tmp_path / "both" / "mnist-e1.json").read_text())
    # Cached stages keep the training time recorded when they were trained.
    assert [r for r in both["runs"] if r["seed"] == 1] == one["runs"]
    assert all(r["train_seconds"] > 0 for r in both["runs"])


def test_cache_reads_stages_and_checkpoints_written_as_torch_pickles_before_safetensors(tmp_path):
    cache = RunCache(tmp_path, "mnist-x", "cfg", 100)
    finished = {"decoder": {"w": torch.arange(6.0).reshape(2, 3)}}
    partial = {"epoch": 41, "modules": {"d": {"w": torch.ones(2)}}, "optimizers": {}}
    final_path = cache.stage_path("RCDAE", 1, 2)
    final_path.parent.mkdir(parents=True)
    torch.save(finished, final_path.with_suffix(".pt"))
    torch.save(partial, cache.checkpoint("RCDAE", 1, 2).path.with_suffix(".pt"))
    assert final_path.name == "stage2.safetensors"
    assert torch.equal(cache.load("RCDAE", 1, 2)["decoder"]["w"], finished["decoder"]["w"])
    assert cache.checkpoint("RCDAE", 1, 2).load()["epoch"] == 41
    assert sorted(p.name for p in final_path.parent.iterdir()) == ["stage2.partial.safetensors", "stage2.safetensors"]


def test_command_reports_missing_data_dir(tmp_path):
    result = CliRunner().invoke(cascade_command, ["--data-dir", str(tmp_path / "nope"), "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "data directory" in result.output and "not found" in result.output


def test_merge_joins_parts_into_the_table_one_run_gives(tmp_path):
    """Seeds and families run as separate parts merge into the same summary as one run over all of them."""
    _fake_mnist(tmp_path / "data", 40, 8, seed=8)
    common = ["--dataset", "mnist", "--data-dir", str(tmp_path / "data"), "--epochs", "1", "--hidden", "8",
              "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"]
    for name, args in {"ae0": ["--seed", "0", "--algorithms", "RCDAE"], "aae0": ["--seed", "0", "--algorithms", "AAE,GCDAAE"],
                       "ae1": ["--seed", "1", "--algorithms", "RCDAE"], "aae1": ["--seed", "1", "--algorithms", "AAE,GCDAAE"]}.items():
        result = CliRunner().invoke(cascade_command, [*common, *args, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    whole = CliRunner().invoke(cascade_command, [*common, "--seeds", "2", "--algorithms", "RCDAE,AAE,GCDAAE",
                                                 "--out", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output

    parts = [str(tmp_path / name / "mnist-e1.json") for name in ("aae1", "ae0", "aae0", "ae1")]
    merged = CliRunner().invoke(cascade_merge_command, [*parts, "--out", str(tmp_path / "merged")])
    assert merged.exit_code == 0, merged.output
    record = json.loads((tmp_path / "merged" / "mnist-e1.json").read_text())
    expected = json.loads((tmp_path / "whole" / "mnist-e1.json").read_text())
    assert record["summary"] == expected["summary"]
    assert record["seeds"] == [0, 1] and record["stage1_mismatch"] == 0.0
    assert [p["file"] for p in record["parts"]] == parts
    assert "stage-1 SSIM gap" in (tmp_path / "merged" / "mnist-e1.txt").read_text()

    # Parts that measured different things, or disagree about a run, are refused with one line.
    other = json.loads((tmp_path / "ae1" / "mnist-e1.json").read_text())
    other["epochs_per_stage"] = 2
    (tmp_path / "other.json").write_text(json.dumps(other))
    refused = CliRunner().invoke(cascade_merge_command, [parts[1], str(tmp_path / "other.json"), "--out", str(tmp_path / "x")])
    assert refused.exit_code != 0 and "differ in epochs_per_stage" in refused.output
    other["epochs_per_stage"] = 1
    other["runs"][0]["stage_ssim"][0] += 0.01  # AE seed 1 no longer matches the other part's
    (tmp_path / "other.json").write_text(json.dumps(other))
    refused = CliRunner().invoke(cascade_merge_command, [parts[0], str(tmp_path / "other.json"), "--out", str(tmp_path / "x")])
    assert refused.exit_code != 0 and "AE seed 1 differs" in refused.output
    (tmp_path / "junk.json").write_text("{not json")
    refused = CliRunner().invoke(cascade_merge_command, [str(tmp_path / "junk.json"), "--out", str(tmp_path / "x")])
    assert refused.exit_code != 0 and "not a cascade experiment record" in refused.output
    assert not (tmp_path / "x").exists()


def test_stage1_mismatch_measures_a_cascade_built_on_a_retrained_base():
    rate = RateReport(150.0, 190.0, 10, 149.0, True)

    def run(name, seed, stage1):
        return RunResult(name, seed, [stage1, stage1 + 0.01], [stage1], [20.0], rate, None)

    runs = [run("AE", 0, 0.90), run("RCDAE", 0, 0.90), run("AE", 1, 0.91), run("GCDAE", 1, 0.905), run("RCDAAE", 1, 0.5)]
    assert stage1_mismatch(runs) == pytest.approx(0.005)  # RCDAAE has no AAE row to compare with
    assert stage1_mismatch(runs[:2]) == 0.0


# --- running in parallel parts ------------------------------------------------


def test_plan_trains_each_base_once_before_the_parts_that_need_it():
    jobs = plan([0, 1], algs.select("RCDAE,GCDAAE,WAE"))
    assert [j.name for j in jobs if j.seed == 0] == ["seed0-ae", "seed0-aae", "seed0-wae", "seed0-rcdae", "seed0-gcdaae"]
    needs = {j.name: j.needs for j in jobs}
    assert needs["seed1-ae"] == () and needs["seed1-aae"] == ("AE",) and needs["seed1-rcdae"] == ("AE",)
    assert needs["seed1-gcdaae"] == ("AE", "AAE")  # its base gets a part of its own even where not selected


class _FakeProcess:
    """Finishes after `polls` polls with `code`."""

    def __init__(self, polls: int, code: int):
        self.polls, self.code, self.terminated = polls, code, False

    def poll(self):
        self.polls -= 1
        return self.code if self.polls <= 0 else None

    def terminate(self):
        self.terminated = True


def test_run_parts_keeps_the_order_and_the_job_limit_and_skips_what_a_failure_blocks():
    jobs = plan([0, 1], algs.select("RCDAE,ACDAAE"))
    started: list[str] = []
    running: list[_FakeProcess] = []
    most = 0

    def launch(job: PartJob):
        nonlocal most
        finished = {name for name in started if not any(p.name == name and p.polls > 0 for p in running)}
        assert all(f"seed{job.seed}-{n.lower()}" in finished for n in job.needs), job.name
        process = _FakeProcess(polls=2, code=1 if job.name == "seed1-aae" else 0)
        process.name = job.name
        started.append(job.name)
        running.append(process)
        most = max(most, sum(p.polls > 0 for p in running))
        return process

    codes = run_parts(jobs, launch, max_jobs=3, log=lambda m: None, sleep=lambda s: None)
    assert most <= 3
    assert started[:2] == ["seed0-ae", "seed1-ae"]
    assert codes[(1, "AAE")] == 1 and codes[(1, "ACDAAE")] == SKIPPED and "seed1-acdaae" not in started
    assert all(code == 0 for key, code in codes.items() if key not in {(1, "AAE"), (1, "ACDAAE")})


def test_run_parts_finishes_a_seed_before_starting_the_next():
    started: list[str] = []

    def launch(job: PartJob):
        started.append(job.name)
        return _FakeProcess(polls=1, code=0)

    run_parts(plan([0, 1], algs.select("RCDAE,ACDAAE")), launch, max_jobs=1, log=lambda m: None, sleep=lambda s: None)
    # Within a seed: bases, then the adversarial cascade (the longest), then the rest.
    per_seed = ["ae", "aae", "acdaae", "rcdae"]
    assert started == [f"seed0-{a}" for a in per_seed] + [f"seed1-{a}" for a in per_seed]


def test_run_parts_stops_the_running_parts_when_interrupted():
    launched: list[_FakeProcess] = []

    def launch(job):
        launched.append(_FakeProcess(polls=100, code=0))
        return launched[-1]

    def interrupt(seconds):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_parts(plan([0, 1], algs.select("RCDAE")), launch, max_jobs=4, log=lambda m: None, sleep=interrupt)
    assert len(launched) == 2 and all(p.terminated for p in launched)  # the two AE parts; the rest wait for them


def test_parts_command_gives_the_table_one_run_gives(tmp_path):
    _fake_mnist(tmp_path / "data", 40, 8, seed=9)
    common = ["--dataset", "mnist", "--data-dir", str(tmp_path / "data"), "--epochs", "1", "--seeds", "2",
              "--hidden", "8", "--algorithms", "RCDAE,GCDAAE", "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"]
    result = CliRunner().invoke(cascade_parts_command, [*common, "--jobs", "3", "--out", str(tmp_path / "parts")])
    assert result.exit_code == 0, result.output
    logs = [f.read_text() for f in sorted((tmp_path / "parts").glob("*.log"))]
    assert len(logs) == 8  # AE, AAE, RCDAE, GCDAAE for each of two seeds
    for seed in (0, 1):
        for base in ("AE", "AAE"):
            assert sum(f"seed {seed} {base} stage 1: trained" in log for log in logs) == 1
    merged = json.loads((tmp_path / "parts" / "mnist-e1.json").read_text())
    assert len(merged["parts"]) == 8
    # One `cascade` run over the same cache trains nothing and scores the same.
    whole = CliRunner().invoke(cascade_command, [*common, "--out", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output
    assert "trained in" not in whole.stderr
    whole_rows = {r["algorithm"]: r for r in json.loads((tmp_path / "whole" / "mnist-e1.json").read_text())["summary"]}
    merged_rows = {r["algorithm"]: r for r in merged["summary"]}
    assert set(merged_rows) == {*whole_rows, "AAE"}  # GCDAAE's base had a part of its own
    assert all(merged_rows[name] == row for name, row in whole_rows.items())
