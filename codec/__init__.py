"""Networks, models, training and the encode/decode pipeline (the part that needs torch).

- `networks`, `stage`, `model`: the cascade of residual stages.
- `pipeline`: images to .cdc bytes and back (`encode`, `decode`); `postfilter`: the
  per-image filter each lossy stage may carry; `similarity`: MS-SSIM, measured once for
  the encoder and the benchmark.
- `weights`: safetensors weights and the shipped-model manifest.
- `training`: stage-by-stage training with checkpoints.
"""
