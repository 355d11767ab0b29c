"""The paper's reported mean test SSIM, copied from its tables for comparison.

Source: "Cascade decoders-based autoencoders" (../shared/papers/
cascade-decoders-autoencoders.txt): Tab. 4 (MNIST), Tab. 6 (FMNIST) and the
"breast" column of Tab. 7 (MedMNIST). Single runs; the paper gives no spread.
Only SSIM is stored: ΔSSIM is recomputed as SSIM - SSIM(AE). That matches every
printed ΔSSIM of these three columns except Tab. 7's RCDAAE/breast, printed as
0.00094 where 0.89772 - 0.88868 = 0.00904 (a typo in the paper).
The paper never ran VAE or WAE cascades, so those rows have no paper value.
"""

from __future__ import annotations

PAPER_SSIM: dict[str, dict[str, float]] = {
    # Tab. 4. Experimental results on MNIST dataset
    "mnist": {
        "AE": 0.97387,
        "GCDAE": 0.97415,
        "RCDAE": 0.97592,
        "ACDAE": 0.97354,
        "RACDAE": 0.97574,
        "AAE": 0.97304,
        "GCDAAE": 0.97397,
        "RCDAAE": 0.97576,
        "ACDAAE": 0.97381,
        "RACDAAE": 0.97589,
    },
    # Tab. 6. Experimental results on FMNIST dataset
    "fashion-mnist": {
        "AE": 0.96335,
        "GCDAE": 0.96463,
        "RCDAE": 0.96620,
        "ACDAE": 0.96329,
        "RACDAE": 0.96625,
        "AAE": 0.96366,
        "GCDAAE": 0.96458,
        "RCDAAE": 0.96630,
        "ACDAAE": 0.96353,
        "RACDAAE": 0.96637,
    },
    # Tab. 7. Experimental results on MMNIST dataset, column "breast"
    "breastmnist": {
        "AE": 0.88868,
        "GCDAE": 0.89228,
        "RCDAE": 0.90574,
        "ACDAE": 0.87883,
        "RACDAE": 0.89908,
        "AAE": 0.88527,
        "GCDAAE": 0.89139,
        "RCDAAE": 0.89772,
        "ACDAAE": 0.88895,
        "RACDAAE": 0.90113,
    },
}


def paper_ssim(dataset: str, algorithm: str) -> float | None:
    return PAPER_SSIM.get(dataset, {}).get(algorithm)


def paper_delta(dataset: str, algorithm: str) -> float | None:
    value, ae = paper_ssim(dataset, algorithm), paper_ssim(dataset, "AE")
    return None if value is None or ae is None else value - ae
