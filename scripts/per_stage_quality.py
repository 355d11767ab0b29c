"""Would a different quality level per stage give a better rate ladder? (a measurement)

The format records a quality level per stage, but `cdcodec encode --quality`
uses one level for all stages: 5 levels × 3 stage counts = 15 operating points.
This encodes a few Kodak images with every combination of levels (5³ = 125 for
three stages, whose prefixes give the 1- and 2-stage combinations), measures
each from real bytes, and compares the upper envelope of all 155 distinct
points with that of the 15 same-level points (BD-rate, negative = the mixed
ladder needs fewer bits). It also prints which combinations form the envelope.

    python scripts/per_stage_quality.py default 4

Arguments: model (`default` or a model id), number of Kodak images (every
24/n-th). Slow: about 20 CPU minutes per image on one thread.
"""

import itertools
import sys

import numpy as np
import torch
from PIL import Image

from cdcodec.bench import metrics
from cdcodec.bench.bdrate import bd_rate, rd_hull
from cdcodec.bitstream import Header, StageInfo, StageKind, encode_latent, pack, truncate
from cdcodec.codec import pipeline as P
from cdcodec.codec.model import stage_prior, symbols_to_array

from kodak_sample import kodak_sample


@torch.no_grad()
def encode(loaded, pixels: np.ndarray, levels: tuple[int, ...]) -> bytes:
    """`pipeline.encode` with quality level levels[k] for stage k."""
    codec = loaded.codec
    h, w = pixels.shape[:2]
    x = P._to_tensor(pixels, codec.config.multiple)
    prev, payloads, previous = codec.base(x), [], None
    for k, (stage, q) in enumerate(zip(codec.stages, levels)):
        s = codec.scale(q)
        sym = stage.quantize(stage.analyse(x, prev, s))
        prior = stage_prior(previous, tuple(sym.shape[-2:]), sym.shape[1])
        payloads.append(encode_latent(symbols_to_array(sym), codec.tables_for(k, q), prior, tuple(sym.shape[-2:])))
        previous = sym
        prev = stage.synthesise(sym, prev, s)
    header = Header(width=w, height=h, channels=3, model_id=codec.config.model_id, weights_digest=loaded.digest,
                    stages=tuple(StageInfo(StageKind.LATENT, q) for q in levels))
    return pack(header, payloads)


def main() -> None:
    torch.set_num_threads(1)
    loaded = P.get_model(None if sys.argv[1] == "default" else sys.argv[1])
    levels_count = len(loaded.codec.config.qualities)
    n = int(sys.argv[2])
    images = kodak_sample(n)
    res: dict[str, list] = {}
    for index, path in enumerate(images):
        img = np.asarray(Image.open(path).convert("RGB"))
        for levels in itertools.product(range(levels_count), repeat=loaded.codec.num_stages):
            data = encode(loaded, img, levels)
            for s in range(1, len(levels) + 1):
                key = "-".join(map(str, levels[:s]))
                if len(res.get(key, [])) > index:  # this prefix was measured already for this image
                    continue
                prefix = truncate(data, s)
                m = metrics.measure(img, P.decode(prefix, model=loaded), len(prefix))
                res.setdefault(key, []).append((m["bpp"], m["psnr"], m["ms_ssim"]))
        print(path.name, flush=True)
    mean = {k: np.mean(v, axis=0) for k, v in res.items()}
    same = np.array([v for k, v in mean.items() if len(set(k.split("-"))) == 1])
    every = np.array(list(mean.values()))
    db = lambda m: -10 * np.log10(1 - m)  # noqa: E731
    print("points same-level", len(same), "all", len(every))
    print("BD PSNR all-combos vs same-level: %+.2f%%" % bd_rate(same[:, 0], same[:, 1], every[:, 0], every[:, 1]))
    print("BD MS-SSIM all-combos vs same-level: %+.2f%%" % bd_rate(same[:, 0], db(same[:, 2]), every[:, 0], db(every[:, 2])))
    log_rates, quals = rd_hull(every[:, 0], every[:, 1])
    by_rate = {round(float(v[0]), 6): k for k, v in mean.items()}
    print("PSNR envelope of all combinations (bpp, dB, levels per stage):")
    for r, q in zip(np.exp(log_rates), quals):
        print(f"  {r:.3f} {q:.2f} {by_rate[round(float(r), 6)]}")


if __name__ == "__main__":
    main()
