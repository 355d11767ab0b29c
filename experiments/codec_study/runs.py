"""The study's training runs: stage 1 of `cascade3` under different recipes.

Each run is a complete `train_cascade` call with its own cosine schedule, so a
shorter run is not a snapshot of a longer one. Runs live in a cache folder
outside the repository and resume there; a finished run is a weights file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...codec.presets import preset_config
from ...codec.training.train import TrainSettings, train_cascade

DEFAULT_CACHE = Path.home() / ".cache" / "cdcodec" / "study"


@dataclass(frozen=True)
class Run:
    name: str
    arch: str
    steps: int
    seed: int = 0
    intermediate_loss: float = 0.0
    note: str = ""

    def command(self, data_dir: str) -> str:
        """The `cdcodec train` command that makes this run by hand."""
        return (
            f"cdcodec train --data {data_dir} --model-id study-{self.name} --arch {self.arch} --steps {self.steps}"
            f" --seed {self.seed} --intermediate-loss {self.intermediate_loss} --threads 1"
            f" --work-dir CACHE/{self.name} --out CACHE/{self.name}/model.safetensors"
        )


RUNS = (
    Run("base-250", "cascade3-stage1", 250, note="plain recipe, 250 steps"),
    Run("base-1000", "cascade3-stage1", 1000, note="plain recipe, 1000 steps"),
    Run("base-1000-seed1", "cascade3-stage1", 1000, seed=1, note="plain recipe, 1000 steps, second seed"),
    Run("base-3000", "cascade3-stage1", 3000, note="plain recipe, 3000 steps"),
    Run("perlayer-1000", "cascade3-stage1", 1000, intermediate_loss=0.5, note="+ loss on the linear reconstruction (weight 0.5)"),
    Run("selu-1000", "cascade3-stage1-selu", 1000, note="SELU instead of LeakyReLU"),
)

#: Ablations (d) and (e): one stage trained from scratch at the cascade's stage-2
#: rate (about 1 bpp), for as many steps as the shipped cascade3's stages 1 and 2
#: together (1800 + 1600): the "one bigger single-stage model at the same rate";
#: (e) also has about as many nonlinear parameters as those two stages. The note
#: is the ablation table's label.
SINGLE_STAGE_RUNS = (
    Run("single8-3400", "single8", 3400, note="(d) one stage trained at about 1 bpp"),
    Run("single8-wide-3400", "single8-wide", 3400, note="(e) as (d), with the nonlinear parameters of stages 1 and 2"),
)


def weights_path(cache: Path, run: Run) -> Path:
    return cache / run.name / "model.safetensors"


def train_run(run: Run, data_dir: Path, cache: Path, device: str = "cpu") -> Path:
    """Train (or resume, or find finished) one run; returns its weights file."""
    out = weights_path(cache, run)
    if not out.exists():
        settings = TrainSettings(steps_per_stage=(run.steps,), seed=run.seed, intermediate_loss=run.intermediate_loss)
        train_cascade(preset_config(run.arch, f"study-{run.name}"), data_dir, cache / run.name, settings, device=device, out=out)
    return out
