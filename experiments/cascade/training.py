"""Stage-by-stage training, following the paper's sub-problems.

Stage 1 trains the encoder and decoder 1 with the base model's objective (AE,
AAE, VAE or WAE). Stage n > 1 trains decoder n alone: the encoder and decoders
1..n-1 are frozen, so their outputs are fixed and are computed once for the
whole training set before the stage starts (the same numbers a frozen forward
pass would give on every batch, at a fraction of the cost).

Training is resumable at epoch granularity through an optional `EpochStore`:
after every epoch the trainable modules, the optimizers, the epoch number and
the training seconds so far are handed to it, and a restarted run continues
from the last saved epoch (its reported time includes the earlier runs').
Batches and noise come from generators seeded by (seed, stage, epoch), so a
resumed run draws the same batches as an uninterrupted one.
"""

from __future__ import annotations

import time
import zlib
from typing import Callable, Protocol

import torch
from torch import nn

from . import losses
from .algorithms import Algorithm
from .config import TrainConfig
from .models import IMAGE_DIM, CascadeAutoencoder, Decoder, Discriminator, Encoder, next_stage


class EpochStore(Protocol):
    """Where a stage's training state goes between epochs (see `cache.StageCheckpoint`)."""

    def load(self) -> dict | None: ...

    def save(self, state: dict) -> None: ...


def derived_seed(*parts: object) -> int:
    """A stable 31-bit seed from any labels (Python's hash() is salted per process)."""
    return zlib.crc32("/".join(str(p) for p in parts).encode()) & 0x7FFFFFFF


def build_base(algorithm: Algorithm, cfg: TrainConfig, seed: int) -> CascadeAutoencoder:
    """Encoder and decoder 1 of a base model, initialised from (seed, base)."""
    torch.manual_seed(derived_seed("init", algorithm.base, seed, 1))
    encoder = Encoder(cfg, variational=algorithm.base == "vae")
    decoder = Decoder(cfg, cfg.latent_dim)
    return CascadeAutoencoder(encoder, [decoder], residual=algorithm.residual)


def add_decoder(model: CascadeAutoencoder, algorithm: Algorithm, cfg: TrainConfig, seed: int) -> Decoder:
    """Append a fresh decoder n (fed the previous stage's image) to the cascade."""
    stage = len(model.decoders) + 1
    torch.manual_seed(derived_seed("init", algorithm.name, seed, stage))
    decoder = Decoder(cfg, IMAGE_DIM).to(next(model.parameters()).device)
    model.decoders.append(decoder)
    return decoder


def _adam(params, cfg: TrainConfig) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.adam_beta1, 0.999))


def _batches(n: int, cfg: TrainConfig, gen: torch.Generator, device: torch.device):
    """Shuffled index batches; a trailing batch of one is dropped (MMD needs two)."""
    order = torch.randperm(n, generator=gen).to(device)
    for idx in order.split(cfg.batch_size):
        if len(idx) >= 2:
            yield idx


def _run_epochs(
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    epoch_fn: Callable[[int], None],
    epochs: int,
    store: EpochStore | None,
) -> float | None:
    """Run `epoch_fn` for each remaining epoch, checkpointing through `store`.

    Returns the seconds spent training the stage, over every run that resumed it;
    None when it resumed a checkpoint written before times were kept.
    """
    start, seconds = 0, 0.0
    saved = store.load() if store is not None else None
    if saved is not None:
        for name, module in modules.items():
            module.load_state_dict(saved["modules"][name])
        for name, opt in optimizers.items():
            opt.load_state_dict(saved["optimizers"][name])
        start = int(saved["epoch"])
        seconds = saved.get("seconds")
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        epoch_fn(epoch)
        if seconds is not None:
            seconds += time.perf_counter() - t0
        if store is not None:
            store.save(
                {
                    "epoch": epoch + 1,
                    "seconds": seconds,
                    "modules": {k: m.state_dict() for k, m in modules.items()},
                    "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
                }
            )
    return seconds


def train_base(
    model: CascadeAutoencoder,
    algorithm: Algorithm,
    train_x: torch.Tensor,
    cfg: TrainConfig,
    seed: int,
    epochs: int,
    store: EpochStore | None = None,
) -> float | None:
    """Stage 1: train the encoder and decoder 1 with the base model's objective; returns its training seconds.

    AE: reconstruction only. AAE (Makhzani et al.): per batch a reconstruction
    step on encoder+decoder, a step of the latent discriminator (prior samples
    real, codes fake), and a step of the encoder to fool it. VAE: reconstruction
    of a reparameterised sample plus KL to N(0, I). WAE: reconstruction plus
    MMD between the codes and prior samples.
    """
    device = train_x.device
    encoder, decoder = model.encoder, model.decoders[0]
    modules: dict[str, nn.Module] = {"encoder": encoder, "decoder": decoder}
    optimizers: dict[str, torch.optim.Optimizer] = {"ae": _adam(list(encoder.parameters()) + list(decoder.parameters()), cfg)}
    if algorithm.base == "aae":
        torch.manual_seed(derived_seed("init-dc", algorithm.base, seed))
        modules["latent_disc"] = Discriminator(cfg, cfg.latent_dim).to(device)
        optimizers["disc"] = _adam(modules["latent_disc"].parameters(), cfg)
        optimizers["gen"] = _adam(encoder.parameters(), cfg)

    def epoch_fn(epoch: int) -> None:
        gen = torch.Generator().manual_seed(derived_seed("batches", algorithm.base, seed, 1, epoch))
        noise = torch.Generator(device=device).manual_seed(derived_seed("noise", algorithm.base, seed, epoch))
        model.train()
        for idx in _batches(len(train_x), cfg, gen, device):
            x = train_x[idx]
            _base_step(algorithm.base, x, modules, optimizers, cfg, noise)

    seconds = _run_epochs(modules, optimizers, epoch_fn, epochs, store)
    model.eval()
    return seconds


def _base_step(base, x, modules, optimizers, cfg: TrainConfig, noise: torch.Generator) -> None:
    encoder, decoder = modules["encoder"], modules["decoder"]
    opt = optimizers["ae"]
    opt.zero_grad()
    if base == "vae":
        mean, logvar = encoder.moments(x)
        eps = torch.randn(mean.shape, generator=noise, device=x.device)
        z = mean + torch.exp(0.5 * logvar) * eps
        loss = losses.reconstruction(x, decoder(z)) + cfg.vae_kl_weight * losses.gaussian_kl(mean, logvar)
    elif base == "wae":
        z = encoder(x)
        prior = torch.randn(z.shape, generator=noise, device=x.device)
        loss = losses.reconstruction(x, decoder(z)) + cfg.wae_mmd_weight * losses.mmd_imq(z, prior)
    else:
        loss = losses.reconstruction(x, decoder(encoder(x)))
    loss.backward()
    opt.step()
    if base != "aae":
        return
    disc = modules["latent_disc"]
    # Regularisation phase: discriminator (prior = real, codes = fake) ...
    with torch.no_grad():
        z = encoder(x)
    prior = torch.randn(z.shape, generator=noise, device=x.device)
    optimizers["disc"].zero_grad()
    losses.discriminator_loss(disc(prior), disc(z), cfg.log_eps).backward()
    optimizers["disc"].step()
    # ... then the encoder as generator, trying to pass its codes off as prior samples.
    optimizers["gen"].zero_grad()
    losses.generator_loss(disc(encoder(x)), cfg.log_eps).backward()
    optimizers["gen"].step()


@torch.no_grad()
def stage_inputs(model: CascadeAutoencoder, x: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Output of the model's last stage for all of `x` (the next decoder's input)."""
    model.eval()
    parts = [model(x[i : i + chunk])[-1] for i in range(0, len(x), chunk)]
    return torch.cat(parts)


def freeze(module: nn.Module) -> None:
    """Stop gradients into `module` for good: earlier stages stay exactly as trained."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)


def train_later_stage(
    model: CascadeAutoencoder,
    algorithm: Algorithm,
    train_x: torch.Tensor,
    cfg: TrainConfig,
    seed: int,
    epochs: int,
    store: EpochStore | None = None,
) -> tuple[Decoder, float | None]:
    """Add decoder n to a trained n-1 stage cascade and train it alone; returns it and its training seconds.

    General cascades fit decoder n's output to x; residual ones fit the sum of
    the previous reconstruction and decoder n's output to x (equivalently the
    decoder fits the residual). Adversarial ones add beta times the generator
    term of a fresh discriminator that tells stage n's reconstructions from
    real images; the discriminator is trained on the same batches.
    """
    if algorithm.cascade is None:
        raise ValueError(f"{algorithm.name} has no cascade")
    freeze(model)
    previous = stage_inputs(model, train_x)
    decoder = add_decoder(model, algorithm, cfg, seed)
    stage = len(model.decoders)
    modules: dict[str, nn.Module] = {"decoder": decoder}
    optimizers: dict[str, torch.optim.Optimizer] = {"decoder": _adam(decoder.parameters(), cfg)}
    if algorithm.adversarial:
        torch.manual_seed(derived_seed("init-dc", algorithm.name, seed, stage))
        modules["image_disc"] = Discriminator(cfg, IMAGE_DIM).to(train_x.device)
        optimizers["disc"] = _adam(modules["image_disc"].parameters(), cfg)

    def epoch_fn(epoch: int) -> None:
        gen = torch.Generator().manual_seed(derived_seed("batches", algorithm.name, seed, stage, epoch))
        decoder.train()
        for idx in _batches(len(train_x), cfg, gen, train_x.device):
            _later_step(algorithm, train_x[idx], previous[idx], modules, optimizers, cfg)

    seconds = _run_epochs(modules, optimizers, epoch_fn, epochs, store)
    decoder.eval()
    return decoder, seconds


def _later_step(algorithm: Algorithm, x, prev, modules, optimizers, cfg: TrainConfig) -> None:
    decoder = modules["decoder"]
    y = next_stage(prev, decoder(prev), algorithm.residual)
    if algorithm.adversarial:
        disc = modules["image_disc"]
        optimizers["disc"].zero_grad()
        losses.discriminator_loss(disc(x), disc(y.detach()), cfg.log_eps).backward()
        optimizers["disc"].step()
    optimizers["decoder"].zero_grad()
    loss = losses.reconstruction(x, y)
    if algorithm.adversarial:
        loss = loss + cfg.image_adv_weight * losses.generator_loss(modules["image_disc"](y), cfg.log_eps)
    loss.backward()
    optimizers["decoder"].step()
