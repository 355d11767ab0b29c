"""Training throughput: how many steps (and images) per second each stage trains at.

Issue 3 asks where the compute goes; a training recipe is only as good as the
steps it can afford. This times the same step `cdcodec train` takes (data
batch, frozen earlier stages, the stage's forward and backward pass, Adam) on
a freshly initialised model of a preset, so the figure depends on the
architecture, batch, crop, device and thread count, not on trained weights.
The data path is timed apart from the compute, to show whether it keeps up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ..model import CascadeCodec, CodecConfig
from ..networks import lambda_for_step
from .data import CropSampler
from .precision import uses_autocast
from .train import TrainSettings, init_stage, stage_optimizer, training_step


@dataclass(frozen=True)
class StageThroughput:
    stage: int
    steps: int
    step_seconds: float  # mean wall time of one training step, data excluded
    data_seconds: float  # mean wall time to draw one batch of crops (and move it to the device)

    @property
    def steps_per_second(self) -> float:
        return 1.0 / (self.step_seconds + self.data_seconds)

    def as_dict(self, batch: int, crop: int) -> dict:
        rate = self.steps_per_second
        return {
            "stage": self.stage,
            "timed_steps": self.steps,
            "step_ms": round(1000 * self.step_seconds, 2),
            "data_ms": round(1000 * self.data_seconds, 2),
            "steps_per_second": round(rate, 3),
            "images_per_second": round(rate * batch, 2),
            "megapixels_per_second": round(rate * batch * crop * crop / 1e6, 3),
        }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_throughput(
    config: CodecConfig, sampler: CropSampler, settings: TrainSettings, device: str = "cpu", steps: int = 20, warmup: int = 3
) -> list[StageThroughput]:
    """Time `steps` training steps of every stage (after `warmup` untimed ones), as `cdcodec train` runs them."""
    if steps < 1 or warmup < 0:
        raise ValueError("need at least one timed step and a non-negative warm-up")
    dev = torch.device(device)
    torch.manual_seed(settings.seed)
    codec = CascadeCodec(config).to(dev)
    use_amp = uses_autocast(dev, settings.precision)
    results = []
    for k, stage in enumerate(codec.stages):
        init_stage(codec, k, sampler, settings, dev)
        optimizer = stage_optimizer(codec, k, settings)
        lam = lambda_for_step(stage.config.step)
        step_time = data_time = 0.0
        for i in range(warmup + steps):
            _sync(dev)
            t0 = time.perf_counter()
            x = sampler.batch(settings.batch).to(dev, non_blocking=True)
            _sync(dev)
            t1 = time.perf_counter()
            training_step(codec, k, x, optimizer, lam, settings, use_amp)
            _sync(dev)
            t2 = time.perf_counter()
            if i >= warmup:
                data_time += t1 - t0
                step_time += t2 - t1
        results.append(StageThroughput(k + 1, steps, step_time / steps, data_time / steps))
    return results
