"""The few Kodak images a quick probe measures: n of the 24, evenly spread.

The probes that compare two ways of coding (the post-filter's, the symbol
search's, dead-zone rounding's, ...) take the same sample, every (24 // n)-th
image (4: kodim01, 07, 13 and 19), so that their results compare. Kodak is
read from `../shared/data/kodak` beside the repository, never copied into it.
"""

from __future__ import annotations

from pathlib import Path

#: The data folder beside the repository (`../shared/data`), read in place.
SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
KODAK = SHARED_DATA / "kodak"


def kodak_sample(n: int) -> list[Path]:
    """Every (24 // n)-th Kodak image, n of them; exits with a message where Kodak is absent."""
    images = sorted(KODAK.glob("*.png"))[:: max(1, 24 // n)][:n]
    if not images:
        raise SystemExit(f"no Kodak images in {KODAK}")
    return images
