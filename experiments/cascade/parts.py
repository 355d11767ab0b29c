"""Run a cascade experiment as many parts at once, in the order the stage cache allows.

One `cdcodec experiment cascade` process trains its stages one after another,
but most of that work is independent: the cascades on one base share only
its stage 1, and seeds share nothing. Each part here is an ordinary
`cdcodec experiment cascade --seed K --algorithms X` process writing its own
record (the parts `merge` joins), and a small scheduler keeps `jobs` of them
running. The one ordering rule comes from the cache: a part that needs a
base model's stage 1 must not start before the part that trains it has put
it there, or both would train it. Every part includes AE (every ΔSSIM is
measured against it), so per seed the AE part goes first; then the other
bases (AAE, VAE, WAE) and the cascades on AE; then the cascades on each
other base once it is cached.

Among the parts that may start, the earliest seed goes first: a run cut short
(a session's end, a lent machine's deadline) then leaves whole seeds, each a
complete table, rather than the same few algorithms of every seed. Within a
seed, bases go first (they unblock others), then the adversarial cascades
(the longest).

Where the time goes decides `jobs`. On CPU a part is compute-bound, so one
job per core. On a GPU these small networks (batch 100, 512 hidden units)
should leave the device mostly idle, a step costing Python and kernel-launch
time, so many processes should share one GPU well, up to about one per CPU
core (an expectation: no GPU has run this yet).
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from .algorithms import BY_NAME, Algorithm

#: Result code of a part that never ran because a part it needs failed.
SKIPPED = -1


@dataclass(frozen=True)
class PartJob:
    """One part: AE plus `algorithm` for one seed, after the parts named in `needs` (same seed)."""

    seed: int
    algorithm: str
    needs: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"seed{self.seed}-{self.algorithm.lower()}"

    @property
    def key(self) -> tuple[int, str]:
        return (self.seed, self.algorithm)

    @property
    def priority(self) -> int:
        """Within a seed, higher starts first among ready parts: bases unblock others; adversarial cascades take longest."""
        algorithm = BY_NAME[self.algorithm]
        if algorithm.cascade is None:
            return 2
        return 1 if algorithm.adversarial else 0


def plan(seeds: list[int], algorithms: list[Algorithm]) -> list[PartJob]:
    """The parts for `algorithms` on every seed, each with the parts it must wait for.

    Every base model a selected cascade stands on gets its own part, selected
    or not, so that exactly one process trains it.
    """
    names = [a.name for a in algorithms]
    bases = list(dict.fromkeys(["AE", *(BY_NAME[n].base_name for n in names)]))
    cascades = [n for n in names if BY_NAME[n].cascade is not None]
    jobs = []
    for seed in seeds:
        jobs.append(PartJob(seed, "AE", ()))
        jobs += [PartJob(seed, base, ("AE",)) for base in bases[1:]]
        for name in cascades:
            base = BY_NAME[name].base_name
            jobs.append(PartJob(seed, name, ("AE",) if base == "AE" else ("AE", base)))
    return jobs


class Process(Protocol):
    def poll(self) -> int | None: ...

    def terminate(self) -> None: ...


def run_parts(
    jobs: list[PartJob],
    launch: Callable[[PartJob], Process],
    max_jobs: int,
    log: Callable[[str], None] = print,
    poll_seconds: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[tuple[int, str], int]:
    """Run every job through `launch`, at most `max_jobs` at once, each after its needs succeeded.

    Returns each job's exit code (SKIPPED where a part it needs failed). If the
    loop is interrupted (Ctrl-C, or SystemExit from a SIGTERM handler), the parts
    still running are terminated; their finished epochs stay in the stage cache.
    """
    if max_jobs < 1:
        raise ValueError("need at least one job slot")
    pending = list(jobs)
    running: dict[tuple[int, str], tuple[PartJob, Process, float]] = {}
    codes: dict[tuple[int, str], int] = {}
    start = time.monotonic()

    def stamp(message: str) -> None:
        log(f"[{time.monotonic() - start:7.0f} s] {message}")

    try:
        while pending or running:
            for key, (job, process, began) in list(running.items()):
                code = process.poll()
                if code is not None:
                    codes[key] = code
                    del running[key]
                    outcome = "done" if code == 0 else f"FAILED (exit {code})"
                    stamp(f"{job.name} {outcome} after {time.monotonic() - began:.0f} s")
            for job in list(pending):
                failed = [n for n in job.needs if codes.get((job.seed, n), 0) != 0]
                if failed:
                    pending.remove(job)
                    codes[job.key] = SKIPPED
                    stamp(f"{job.name} skipped: needs {', '.join(failed)} of seed {job.seed}, which did not finish")
            ready = [j for j in pending if all(codes.get((j.seed, n)) == 0 for n in j.needs)]
            ready.sort(key=lambda j: (j.seed, -j.priority))
            for job in ready[: max_jobs - len(running)]:
                pending.remove(job)
                running[job.key] = (job, launch(job), time.monotonic())
                stamp(f"{job.name} started ({len(running)} running, {len(pending)} waiting)")
            if pending or running:
                sleep(poll_seconds)
    finally:
        for job, process, _ in running.values():
            if process.poll() is None:
                process.terminate()
                stamp(f"{job.name} stopped")
    return codes


def part_command(job: PartJob, options: list[str], out: Path) -> list[str]:
    """The `cdcodec experiment cascade` invocation of one part; `options` are the shared ones."""
    return [sys.executable, "-m", "cdcodec", "experiment", "cascade", *options, "--seed", str(job.seed),
            "--algorithms", job.algorithm, "--out", str(out / job.name)]


def subprocess_launcher(options: list[str], out: Path) -> Callable[[PartJob], Process]:
    """Start each part as its own process, its table and progress lines in <out>/<part>.log."""

    def launch(job: PartJob) -> Process:
        out.mkdir(parents=True, exist_ok=True)
        with open(out / f"{job.name}.log", "w") as log:
            return subprocess.Popen(part_command(job, options, out), stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)

    return launch
