"""The three ways of training the same autoencoder.

* ``stacked`` - end to end: image in, image out, one loss on the reconstruction.
* ``recursive`` - the paper's method (section 3): one model per depth k = 1..n sharing
  layers.  Model k feeds the (frozen) encoder layers 1..k-1, then trains encoder layer k
  and decoder layer k so that decoder layer k reproduces the input of encoder layer k.
  Everything trained at earlier depths is frozen, and frozen batch norms run on their
  running statistics (as a frozen Keras BatchNormalization layer does), so the targets
  of depth k never move while it trains.  ``frozen_bn="train"`` instead leaves them in
  training mode (batch statistics, running statistics still updated), as a PyTorch model
  does when freezing only switches off gradients.
* ``per-layer`` - the single-model variant the paper's conclusion proposes: the whole
  chain trains end to end, with a weighted MSE at every decoder layer against the input
  of the matching encoder layer.  The encoder-side targets are detached, as in recursive
  training (there they are frozen outright), so the encoder is shaped only by what the
  decoder can rebuild and cannot shrink its features to make the deep losses trivial.

A VAE trains the same ways; its bottleneck (depth n) samples a code and adds a KL term.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .data import batches
from .losses import mse, negative_elbo, reparameterise
from .model import Autoencoder

MODES = ("stacked", "recursive", "per-layer")


@dataclass(frozen=True)
class TrainSettings:
    """How long and how to train.

    For ``recursive`` mode ``epochs`` is per depth (each of the n small models sees the
    training faces ``epochs`` times), which is how one would fit the paper's sub-models
    one after another; its wall-clock time is recorded so the extra cost stays visible.
    ``layer_weights[k-1]`` weights the loss of decoder layer k in ``per-layer`` mode.
    """

    epochs: int = 5
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    vae_sigma: float = 0.1
    layer_weights: Sequence[float] | None = field(default=None)


# -- recursive: which parameters train at depth k ------------------------------------
def stage_modules(model: Autoencoder, k: int) -> tuple[list[nn.Module], list[nn.Module]]:
    """(trainable, frozen) layer lists of depth k's model."""
    return [model.encoder[k - 1], model.decoder[k - 1]], list(model.encoder[:k - 1]) + list(model.decoder[:k - 1])


FROZEN_BN_MODES = ("eval", "train")


def prepare_stage(model: Autoencoder, k: int, frozen_bn: str = "eval") -> list[nn.Parameter]:
    """Freeze everything except what depth k trains; return the parameters to optimise.

    Frozen batch norms run on their running statistics unless ``frozen_bn="train"``.

    A parameter shared with a frozen layer (the shared batch norm of decoder layer k
    belongs to encoder layer k-1) stays frozen: changing it would change the target
    that decoder layer k is chasing.
    """
    train_mods, frozen_mods = stage_modules(model, k)
    frozen_ids = {id(p) for m in frozen_mods for p in m.parameters()}
    frozen_norms = {id(m) for fm in frozen_mods for m in fm.modules() if isinstance(m, nn.BatchNorm2d)}
    trainable: list[nn.Parameter] = []
    seen: set[int] = set()
    for p in model.parameters():
        p.requires_grad_(False)
    for m in train_mods:
        for p in m.parameters():
            if id(p) not in frozen_ids and id(p) not in seen:
                p.requires_grad_(True)
                trainable.append(p)
                seen.add(id(p))
    model.train()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d) and id(m) in frozen_norms and frozen_bn == "eval":
            m.eval()
    return trainable


def stage_loss(model: Autoencoder, x: torch.Tensor, k: int, settings: TrainSettings) -> torch.Tensor:
    """Loss of depth k's model: decoder layer k against the input of encoder layer k."""
    with torch.no_grad():
        target = model.encode_levels(x, upto=k - 1)[-1]
    layer = model.encoder[k - 1]
    if model.spec.variational and k == model.spec.n_layers:
        mean, logvar = layer(target)
        out = model.decoder[k - 1](reparameterise(mean, logvar))
        return negative_elbo(out, target, mean, logvar, settings.vae_sigma)
    return mse(model.decoder[k - 1](layer(target)), target)


# -- stacked and per-layer: one model, end to end -------------------------------------
def stacked_loss(model: Autoencoder, x: torch.Tensor, settings: TrainSettings) -> torch.Tensor:
    if model.spec.variational:
        mean, logvar = model.posterior(x)
        out = model.decode_levels(reparameterise(mean, logvar))[-1]
        return negative_elbo(out, x, mean, logvar, settings.vae_sigma)
    return mse(model(x), x)


def per_layer_losses(model: Autoencoder, x: torch.Tensor) -> list[torch.Tensor]:
    """MSE of decoder layer k's output against encoder layer k's input, for k = 1..n.

    Returned in layer order (index 0 is the image reconstruction).
    """
    if model.spec.variational:
        raise NotImplementedError("per-layer training is implemented for plain autoencoders")
    levels = model.encode_levels(x)
    outs = model.decode_levels(levels[-1])  # level n-1, ..., level 0
    n = model.spec.n_layers
    return [mse(outs[n - k], levels[k - 1].detach()) for k in range(1, n + 1)]


def per_layer_loss(model: Autoencoder, x: torch.Tensor, settings: TrainSettings) -> torch.Tensor:
    losses = per_layer_losses(model, x)
    weights = settings.layer_weights or [1.0] * len(losses)
    if len(weights) != len(losses):
        raise ValueError(f"need {len(losses)} layer weights, got {len(weights)}")
    return sum(w * l for w, l in zip(weights, losses))


# -- loops ------------------------------------------------------------------------------
Log = Callable[[str], None]


def _fit(model: Autoencoder, params: list[nn.Parameter], loss_fn, faces: np.ndarray,
         idx: np.ndarray, settings: TrainSettings, device: torch.device, rng: np.random.Generator,
         log: Log | None, tag: str) -> None:
    opt = torch.optim.Adam(params, lr=settings.lr)
    for epoch in range(settings.epochs):
        total, count = 0.0, 0
        for x in batches(faces, idx, settings.batch_size, rng):
            x = x.to(device)
            loss = loss_fn(x)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{tag}: loss became {loss.item()}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(x)
            count += len(x)
        if log is not None:
            log(f"{tag} epoch {epoch + 1}/{settings.epochs} loss {total / max(count, 1):.5g}")


def train(model: Autoencoder, mode: str, faces: np.ndarray, idx: np.ndarray,
          settings: TrainSettings, device: torch.device | str = "cpu",
          log: Log | None = None, frozen_bn: str = "eval") -> Autoencoder:
    """Train ``model`` in place on ``faces[idx]`` and return it in eval mode.

    ``frozen_bn`` matters only in recursive mode (see ``prepare_stage``).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if frozen_bn not in FROZEN_BN_MODES:
        raise ValueError(f"frozen_bn must be one of {FROZEN_BN_MODES}, got {frozen_bn!r}")
    device = torch.device(device)
    model.to(device)
    rng = np.random.default_rng(settings.seed)
    if mode == "recursive":
        for k in range(1, model.spec.n_layers + 1):
            params = prepare_stage(model, k, frozen_bn)
            _fit(model, params, lambda x, k=k: stage_loss(model, x, k, settings),
                 faces, idx, settings, device, rng, log, f"depth {k}")
        for p in model.parameters():
            p.requires_grad_(True)
    else:
        model.train()
        fn = stacked_loss if mode == "stacked" else per_layer_loss
        _fit(model, list(model.parameters()), lambda x: fn(model, x, settings),
             faces, idx, settings, device, rng, log, mode)
    return model.eval()
