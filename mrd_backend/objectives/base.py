"""What every objective offers the run loop.

The loop hands an objective tone-mapped renders as Dr.Jit tensors (H, W, 3) in [0, 1]:
- `prepare(target)` once per target view -> that view's cached features (never recomputed per step);
- `loss(render, target_features, second_render=None)` -> a differentiable Dr.Jit scalar;
- `similarity(target_features)` -> the similarity of the render last passed to `loss` (same forward pass);
- `last_features()` -> that render's features as numpy (for RSA and reports).
"""
from __future__ import annotations

import numpy as np


class Objective:
    name = "objective"
    native_size: int | None = None     # the network's input size; None = any size
    renders_per_view = 1               # dual_buffer needs two independently seeded renders
    weights_used = "none"              # recorded in the report: none | pretrained | untrained | PATH
    prepare_calls = 0                  # counted so tests can check that target features are cached

    def describe(self) -> dict:
        return {"name": self.name, "native_size": self.native_size, "weights": self.weights_used}

    def prepare(self, target):
        raise NotImplementedError

    def loss(self, render, target_features, second_render=None):
        raise NotImplementedError

    def similarity(self, target_features) -> float:
        raise NotImplementedError

    def last_features(self) -> np.ndarray | None:
        return None
