"""Named architectures that `cdcodec train` can build.

`cascade3` is the shipped layout: a coarse stage on 16×16 blocks, then two
residual stages on 8×8 blocks with finer quantizers; the third starts from the
second's transform so it can code each coefficient in the context of what the
second stage sent for it. The steps set each stage's operating point (roughly
0.3, 1 and 2.1 bits per pixel cumulated on photos); quality levels scale all
steps together, so stage count × quality level gives the ladder of rates.
"""

from __future__ import annotations

from .model import CodecConfig
from .stage import StageConfig

#: Quality levels of the shipped layout: step factors 2^(k/2), coarsest first; level 2 is the trained one.
CASCADE3_QUALITIES = (2.0, 1.4142, 1.0, 0.7071, 0.5)

PRESETS = {
    "cascade3": (
        StageConfig(block=16, step=0.5),
        StageConfig(block=8, step=0.2),
        StageConfig(block=8, step=0.08, basis="previous"),
    ),
    # Stage 1 of cascade3 alone: the unit of the training-time curve and of the
    # training-recipe comparisons in experiments/codec_study (one stage trains in
    # a fraction of the cascade's time, and it is what every later stage builds on).
    "cascade3-stage1": (StageConfig(block=16, step=0.5),),
    "cascade3-stage1-selu": (StageConfig(block=16, step=0.5, activation="selu"),),
    # One stage at cascade3's stage-2 operating point (block 8, step 0.2: about
    # 1 bit per pixel), coding the image itself: the cascade ablation's "one
    # bigger single-stage model at the same rate" (experiments/codec_study).
    "single8": (StageConfig(block=8, step=0.2),),
    # The same with about as many nonlinear parameters as cascade3's stages 1 and 2
    # together (encoder branches 363k, refine CNNs 42k): the ablation's capacity control.
    "single8-wide": (StageConfig(block=8, step=0.2, refine_features=45, encoder_features=72),),
    # A tiny layout for tests and smoke runs: trains in seconds.
    "tiny": (
        StageConfig(block=4, step=0.3, refine_features=8, refine_layers=2, encoder_features=8),
        StageConfig(block=4, step=0.1, refine_features=8, refine_layers=2, encoder_features=8, basis="previous"),
    ),
}


QUALITIES = {
    "cascade3": CASCADE3_QUALITIES,
    "cascade3-stage1": CASCADE3_QUALITIES,
    "cascade3-stage1-selu": CASCADE3_QUALITIES,
    "single8": CASCADE3_QUALITIES,
    "single8-wide": CASCADE3_QUALITIES,
    "tiny": (1.5, 1.0, 0.7),
}


def preset_config(name: str, model_id: str) -> CodecConfig:
    if name not in PRESETS:
        raise KeyError(f"unknown architecture {name!r} (choose from {', '.join(PRESETS)})")
    return CodecConfig(model_id=model_id, stages=PRESETS[name], qualities=QUALITIES[name])
