"""Does dead-zone rounding in the encoder, or its decoder-side twin, pay? (a measurement, not a feature)

Video encoders round transform coefficients towards zero a little more often
than plain rounding does (a "dead zone"): fewer nonzero symbols for a small
distortion cost. This patches the stages' quantizer in this process to
sign(y)·floor(|y| + 0.5 − δ) (the decoder is untouched: it only sees symbols),
measures every operating point of the default model on a few Kodak images from
real bytes, and prints the BD-rate of each δ against δ = 0 (plain rounding).

    python scripts/deadzone_rounding.py default 0,0.1,0.2 4

Arguments: model (`default` or a model id), comma-separated δ values (the first
is the reference), number of Kodak images (every 24/n-th: 4 → kodim01, 07, 13, 19),
and optionally `decoder`.

With `decoder` the rounding stays plain and the reconstruction moves instead:
every stage's synthesis (in the decoder and in the encoder's closed loop) reads
a nonzero symbol k as k − δ·sign(k). For a peaked, Laplacian-like latent the
centroid of a rounding bin lies nearer zero than its centre, which is what
classical decoders exploit; whether the trained synthesis has already absorbed
it is what this measures.

    python scripts/deadzone_rounding.py default 0,0.05,0.1 4 decoder
"""

import sys

import numpy as np
import torch
from PIL import Image

from cdcodec.bench import metrics
from cdcodec.bench.bdrate import bd_rate
from cdcodec.bench.cdcodec_source import cdcodec_points
from cdcodec.codec import stage as S

from kodak_sample import kodak_sample


def main() -> None:
    torch.set_num_threads(1)
    model = sys.argv[1] if sys.argv[1] != "default" else None
    deltas = [float(d) for d in sys.argv[2].split(",")]
    n = int(sys.argv[3])
    decoder = sys.argv[4:] == ["decoder"]
    linear_estimate = S.ResidualStage.linear_estimate
    images = kodak_sample(n)
    out = {}
    for delta in deltas:
        def quantize(self, y, delta=delta):
            return (torch.sign(y) * torch.floor(y.abs() + 0.5 - delta)).clamp(-S.SYMBOL_LIMIT, S.SYMBOL_LIMIT)

        def shifted_estimate(self, symbols, prev, scale=1.0, delta=delta):
            return linear_estimate(self, symbols - delta * torch.sign(symbols), prev, scale)

        if decoder:
            S.ResidualStage.linear_estimate = shifted_estimate
        else:
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
