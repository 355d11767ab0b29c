"""Does dead-zone rounding in the encoder pay? (a measurement, not a feature)

Video encoders round transform coefficients towards zero a little more often
than plain rounding does (a "dead zone"): fewer nonzero symbols for a small
distortion cost. This patches the stages' quantizer in this process to
sign(y)·floor(|y| + 0.5 − δ) (the decoder is untouched: it only sees symbols),
measures every operating point of the default model on a few Kodak images from
real bytes, and prints the BD-rate of each δ against δ = 0 (plain rounding).

    python scripts/deadzone_rounding.py default 0,0.1,0.2 4

Arguments: model (`default` or a model id), comma-separated δ values (the first
is the reference), number of Kodak images (every 24/n-th: 4 → kodim01, 07, 13, 19).
"""

import sys

import numpy as np
import torch
from PIL import Image
from pathlib import Path

from cdcodec.bench import metrics
from cdcodec.bench.bdrate import bd_rate
from cdcodec.bench.cdcodec_source import cdcodec_points
from cdcodec.codec import stage as S

KODAK = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "kodak"


def main() -> None:
    torch.set_num_threads(1)
    model = sys.argv[1] if sys.argv[1] != "default" else None
    deltas = [float(d) for d in sys.argv[2].split(",")]
    n = int(sys.argv[3])
    images = sorted(KODAK.glob("*.png"))[:: 24 // n][:n]
    out = {}
    for delta in deltas:
        def quantize(self, y, delta=delta):
            return (torch.sign(y) * torch.floor(y.abs() + 0.5 - delta)).clamp(-S.SYMBOL_LIMIT, S.SYMBOL_LIMIT)

        S.ResidualStage.quantize = quantize
        points = {}
        for path in images:
            img = np.asarray(Image.open(path).convert("RGB"))
            for e in cdcodec_points(img, model):
                m = metrics.measure(img, e.decoded, len(e.data))
                points.setdefault(e.setting, []).append((m["bpp"], m["psnr"], m["ms_ssim"]))
        out[delta] = np.array([np.mean(v, axis=0) for v in points.values()])
        print(delta, "done", flush=True)
    ref = out[deltas[0]]
    db = lambda m: -10 * np.log10(1 - m)  # noqa: E731
    for delta in deltas[1:]:
        t = out[delta]
        print(f"delta {delta}: BD PSNR {bd_rate(ref[:,0], ref[:,1], t[:,0], t[:,1]):+.2f}%  "
              f"BD MS-SSIM(dB) {bd_rate(ref[:,0], db(ref[:,2]), t[:,0], db(t[:,2])):+.2f}%")


if __name__ == "__main__":
    main()
