"""Pixel objectives: the research code's baselines. Pure Dr.Jit, no network."""
from __future__ import annotations

import drjit as dr
import numpy as np

from .base import Objective


class MAE(Objective):
    """Mean absolute difference of tone-mapped pixels. Similarity = 1 - MAE (the research code logs 0)."""
    name = "mae"

    def prepare(self, target):
        self.prepare_calls += 1
        return dr.detach(target)

    def loss(self, render, target_features, second_render=None):
        self._last = render
        self._target = target_features
        return dr.mean(dr.abs(render - target_features), axis=None)

    def similarity(self, target_features) -> float:
        return 1.0 - float(np.abs(np.asarray(dr.detach(self._last)) - np.asarray(target_features)).mean())

    def last_features(self):
        return np.asarray(dr.detach(self._last)).ravel()


class DualBuffer(MAE):
    """Deng et al. 2022: mean((a - t)(b - t)) over two independently seeded renders a, b of the same view, an
    unbiased estimate of the squared error of the expected render. Similarity = 1 - RMSE of a."""
    name = "dual_buffer"
    renders_per_view = 2

    def loss(self, render, target_features, second_render=None):
        if second_render is None:
            raise ValueError("dual_buffer needs a second, independently seeded render")
        self._last = render
        return dr.mean((render - target_features) * (second_render - target_features), axis=None)

    def similarity(self, target_features) -> float:
        d = np.asarray(dr.detach(self._last)) - np.asarray(target_features)
        return 1.0 - float(np.sqrt((d ** 2).mean()))
