"""The algorithms of the paper's tables, and the VAE/WAE ones it only describes.

Every algorithm is a *base* autoencoder (AE, AAE, VAE, WAE: how the encoder and
decoder 1 are trained) plus an optional *cascade* kind (how decoders 2..N are
added). Keeping those two axes separate is what lets stage 1 be trained once per
base and seed and then shared by all the cascades built on it.
"""

from __future__ import annotations

from dataclasses import dataclass

BASES = ("ae", "aae", "vae", "wae")
CASCADES = ("gcd", "rcd", "acd", "racd")


@dataclass(frozen=True)
class Algorithm:
    """One table row: a base autoencoder and an optional cascade of decoders."""

    name: str
    base: str
    cascade: str | None

    @property
    def residual(self) -> bool:
        """Residual cascades add each later decoder's output to the previous one."""
        return self.cascade in ("rcd", "racd")

    @property
    def adversarial(self) -> bool:
        """Adversarial cascades put a discriminator on each later decoder's output."""
        return self.cascade in ("acd", "racd")

    @property
    def base_name(self) -> str:
        """Name of the base model this algorithm's stage 1 is (e.g. ``AAE``)."""
        return self.base.upper()


def _family(base: str) -> list[Algorithm]:
    suffix = base.upper()
    rows = [Algorithm(suffix, base, None)]
    rows += [Algorithm(f"{kind.upper()}{suffix}", base, kind) for kind in CASCADES]
    return rows


#: The ten rows of the paper's Tables 4-7, in its order.
PAPER_ALGORITHMS: tuple[Algorithm, ...] = tuple(_family("ae") + _family("aae"))
#: The VAE and WAE cascades of the paper's Sections 3.5-3.6, never measured there.
EXTENDED_ALGORITHMS: tuple[Algorithm, ...] = tuple(_family("vae") + _family("wae"))
ALL_ALGORITHMS: tuple[Algorithm, ...] = PAPER_ALGORITHMS + EXTENDED_ALGORITHMS
BY_NAME: dict[str, Algorithm] = {a.name: a for a in ALL_ALGORITHMS}

#: Names accepted by ``--algorithms`` for whole groups.
GROUPS: dict[str, tuple[Algorithm, ...]] = {
    "paper": PAPER_ALGORITHMS,
    "extended": EXTENDED_ALGORITHMS,
    "all": ALL_ALGORITHMS,
}


def select(spec: str) -> list[Algorithm]:
    """Parse a comma list of algorithm names and group names, keeping table order.

    AE is always included because every ΔSSIM is measured against it.
    """
    wanted: set[str] = {"AE"}
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            continue
        if token.lower() in GROUPS:
            wanted.update(a.name for a in GROUPS[token.lower()])
        elif token.upper() in BY_NAME:
            wanted.add(token.upper())
        else:
            choices = ", ".join(list(GROUPS) + [a.name for a in ALL_ALGORITHMS])
            raise ValueError(f"unknown algorithm {token!r}; choose from {choices}")
    return [a for a in ALL_ALGORITHMS if a.name in wanted]
