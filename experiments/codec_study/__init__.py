"""Which training recipes and which cascade pay on Kodak: issues 3 and 7 on the codec itself.

Three questions, all answered with real `.cdc` bytes on the 24 Kodak images:

- How does quality grow with training time? Stage 1 of the shipped layout
  trained for different step budgets (`runs.py`), each a full run with its own
  learning-rate schedule, read at a fixed rate.
- Do the recursive paper's ideas help the codec's transforms? The same stage
  trained with a loss on its intermediate (linear) reconstruction too, or with
  SELU activations, against the plain recipe at the same step budget, with a
  second seed of the plain recipe to show run-to-run noise.
- Does each cascade stage pay for its bits? (a) stage 1 alone with finer
  quantizers to reach the cascade's rates (`wide.py`), (b) stage 1 plus a
  decoder-only residual stage that adds no bits (`decoder_only.py`, the cascade
  paper's residual decoder), (c) the shipped cascade, whose later stages carry
  their own latents.
"""
