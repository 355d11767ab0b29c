"""The configurations to train: the eight rows of the paper's Table 1, plus our extras.

The paper's figures are kept next to the configurations so the printed table can put
them side by side.  Table 1 lists "Recursive Shared Batch Norm 455" twice; it is one
configuration and appears once here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import ArchSpec


@dataclass(frozen=True)
class RunConfig:
    """One row of the table: a name, a training mode and the architecture options."""

    key: str
    label: str
    mode: str
    norm: str = "none"
    activation: str = "selu"
    variational: bool = False
    #: How recursive training runs the batch norms of frozen layers: "eval" (their running
    #: statistics, as a frozen Keras layer) or "train" (batch statistics, and the running
    #: statistics keep moving: what a PyTorch model does when frozen layers only lose
    #: requires_grad).
    frozen_bn: str = "eval"

    def spec(self, n_layers: int, base_width: int) -> ArchSpec:
        return ArchSpec(n_layers=n_layers, base_width=base_width, activation=self.activation,
                        norm=self.norm, variational=self.variational)


# Ray & Hannon, "Recursively Trained Autoencoders" (2022), Table 1: reconstruction error,
# "sum of the mean squared error between input image and reconstruction", averaged over
# 100 input images (we read it as the sum of squared errors per 128x128x3 image in [0, 1]).
PAPER_TABLE1: dict[str, float] = {
    "recursive-bn": 7831,
    "stacked-bn": 467,
    "stacked": 258,
    "recursive": 239,
    "stacked-sharedbn": 643,
    "recursive-sharedbn": 455,
    "stacked-sharedbn-relu": 643,
    "recursive-sharedbn-relu": 2020,
}

TABLE1: tuple[RunConfig, ...] = (
    RunConfig("recursive-bn", "Recursive With Batch Norm", "recursive", norm="batch"),
    RunConfig("stacked-bn", "Stacked With Batch Norm", "stacked", norm="batch"),
    RunConfig("stacked", "Stacked No Batch Norm", "stacked"),
    RunConfig("recursive", "Recursive No Batch Norm", "recursive"),
    RunConfig("stacked-sharedbn", "Stacked Shared Batch Norm", "stacked", norm="shared"),
    RunConfig("recursive-sharedbn", "Recursive Shared Batch Norm", "recursive", norm="shared"),
    RunConfig("stacked-sharedbn-relu", "Stacked Shared BN with ReLU", "stacked", norm="shared",
              activation="relu"),
    RunConfig("recursive-sharedbn-relu", "Recursive Shared BN with ReLU", "recursive",
              norm="shared", activation="relu"),
)

# Not in Table 1: the conclusion's single-model per-layer loss, and the two VAEs of
# section 4.5 (no batch norm, as in the paper), scored by decoding the posterior mean.
EXTRAS: tuple[RunConfig, ...] = (
    RunConfig("per-layer", "Per-layer loss (single model), no BN", "per-layer"),
    RunConfig("stacked-vae", "Stacked VAE, no BN", "stacked", variational=True),
    RunConfig("recursive-vae", "Recursive VAE, no BN", "recursive", variational=True),
    # Our guess at why the paper's recursive standard-BN model collapsed (7831): frozen
    # batch norms that still normalise with batch statistics and update their running ones.
    RunConfig("recursive-bn-trainmode", "Recursive With Batch Norm, frozen BN in training mode",
              "recursive", norm="batch", frozen_bn="train"),
    RunConfig("recursive-sharedbn-trainmode", "Recursive Shared BN, frozen BN in training mode",
              "recursive", norm="shared", frozen_bn="train"),
)

ALL_CONFIGS: dict[str, RunConfig] = {c.key: c for c in TABLE1 + EXTRAS}
