"""Spatial prediction of smooth latent channels (JPEG's DC prediction, for a learned latent).

A few channels of a stage are block averages in disguise: stage 1's strongest
components carry each 16×16 block's mean colour. Their symbols change slowly
from block to block and keep their sign, which the magnitude contexts of
`contexts.py` cannot use. Such a channel is coded in raster order as the
difference between its symbol and a prediction from the already decoded
neighbours W (left) and N (above): ``(W + N + 1) >> 1``. The difference's table
is picked by how much the neighbourhood varies, ``|W − NW| + |N − NW| + |N − NE|``
in ACTIVITY_LEVELS buckets, and by the stage's prior level (`contexts.py`).
Which channels are coded this way is fitted with the tables
(`codec.training.fitting`) and stored with them.

Neighbours outside the grid are replaced by the nearest known ones (first row:
all by W; first column: W and NW by N; last column: NE by N); the first
position predicts 0. `prediction_contexts` computes predictions and contexts
for a whole plane at once (the encoder and the table fitting, which know every
symbol); `predict_at` computes one position from decoded values only (the
decoder). Both are integer arithmetic, so every machine decodes alike.
"""

from __future__ import annotations

import numpy as np

from .contexts import PRIOR_LEVELS

#: Upper-exclusive bounds of the activity buckets: 0, 1, 2, 3-4, 5-8, 9-16, 17+.
ACTIVITY_THRESHOLDS = (1, 2, 3, 5, 9, 17)
ACTIVITY_LEVELS = len(ACTIVITY_THRESHOLDS) + 1
#: Tables per predicted channel.
PREDICTION_CONTEXTS = ACTIVITY_LEVELS * PRIOR_LEVELS


def prediction_contexts(planes: np.ndarray, prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prediction and context id of every position of integer planes (..., h, w), as (..., h·w).

    `prior` holds the positions' prior levels, (..., h·w).
    """
    plane = np.asarray(planes, dtype=np.int64)
    h, w = plane.shape[-2:]
    shape = plane.shape[:-2] + (h * w,)
    if h * w == 0:
        return np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64)
    west = np.zeros_like(plane)
    north = np.zeros_like(plane)
    west[..., :, 1:] = plane[..., :, :-1]
    north[..., 1:, :] = plane[..., :-1, :]
    north[..., 0, :] = west[..., 0, :]
    west[..., 1:, 0] = north[..., 1:, 0]
    north_west = np.zeros_like(plane)
    north_west[..., 1:, 1:] = plane[..., :-1, :-1]
    north_west[..., 0, :] = west[..., 0, :]
    north_west[..., 1:, 0] = north[..., 1:, 0]
    north_east = north.copy()
    north_east[..., 1:, :-1] = plane[..., :-1, 1:]
    activity = np.abs(west - north_west) + np.abs(north - north_west) + np.abs(north - north_east)
    level = np.searchsorted(ACTIVITY_THRESHOLDS, activity, side="right")
    prediction = (west + north + 1) >> 1
    return prediction.reshape(shape), level.reshape(shape) * PRIOR_LEVELS + np.asarray(prior, dtype=np.int64)


def predict_at(plane: list[list[int]], y: int, x: int) -> tuple[int, int]:
    """(prediction, activity level) at (y, x) from the positions before it in raster order.

    `plane` is a list of rows of Python ints (faster than numpy for one value at
    a time); only positions before (y, x) are read.
    """
    if y == 0:
        west = plane[0][x - 1] if x else 0
        north = north_west = north_east = west
    else:
        above = plane[y - 1]
        north = above[x]
        if x:
            west, north_west = plane[y][x - 1], above[x - 1]
        else:
            west = north_west = north
        north_east = above[x + 1] if x + 1 < len(above) else north
    activity = abs(west - north_west) + abs(north - north_west) + abs(north - north_east)
    level = 0
    while level < len(ACTIVITY_THRESHOLDS) and activity >= ACTIVITY_THRESHOLDS[level]:
        level += 1
    return (west + north + 1) >> 1, level
