"""Training settings: the paper's Table 3 plus the choices the paper leaves open.

Table 3 fixes image size, latent size (30), decoder count (3), batch (100),
learning rate (0.0002) and epochs (100). It does not give hidden widths, loss
weights, the optimizer or the latent prior; those are chosen here, once, and
every one of them is part of the cache key so a changed setting never reuses
stale weights.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained stage, apart from data, seed and epochs."""

    # --- from the paper's Table 3 ---
    latent_dim: int = 30
    stages: int = 3
    batch_size: int = 100
    lr: float = 2e-4
    # --- our choices (the paper gives none) ---
    #: Width of the single hidden layer of the encoder and of every decoder.
    hidden: int = 512
    #: Width of the hidden layer of every discriminator.
    disc_hidden: int = 256
    #: Negative slope of every LeakyReLU.
    leaky_slope: float = 0.2
    #: Adam betas; (0.5, 0.999) is the usual choice for adversarial training and
    #: is used for every network so that AE and AAE differ only in the prior term.
    adam_beta1: float = 0.5
    #: Weight of the adversarial term on a decoder's output in ACD/RACD stages
    #: (the paper's beta_n; alpha_n, the reconstruction weight, is 1).
    image_adv_weight: float = 1e-3
    #: The paper's epsilon inside the logs of the adversarial losses.
    log_eps: float = 1e-8
    #: VAE: weight of KL (per image, in nats) against per-pixel mean squared error.
    #: 1/784 makes it the per-image sum of squares plus KL, i.e. a Gaussian decoder.
    vae_kl_weight: float = 1.0 / 784
    #: WAE-MMD: weight of the MMD term against per-pixel MSE (Tolstikhin's
    #: lambda = 10 on per-image squared error, rescaled to a per-pixel mean).
    wae_mmd_weight: float = 10.0 / 784

    def key(self) -> str:
        """Short stable hash of all settings, used in cache paths."""
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:10]
