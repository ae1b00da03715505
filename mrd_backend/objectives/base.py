"""What every objective offers the run loop.

The loop builds an objective with `build_objective(name, weights=..., weights_dir=..., preprocess=..., seed=...,
log=..., render_size=(w, h), classify=None, alpha=0.8)`; every bad option is an MRDError raised right there, before
anything is rendered. It then hands the objective tone-mapped renders as Dr.Jit tensors (H, W, 3) in [0, 1]:
- `prepare(target)` once per target view -> that view's cached features (never recomputed per step);
- `loss(render, target_features, second_render=None)` -> a differentiable Dr.Jit scalar;
- `similarity(target_features)` -> the similarity of the render last passed to `loss` (same forward pass);
- `last_features()` -> that render's features as numpy (for RSA and reports), None when the model has none;
- `step_info()` -> a small dict to log after each `loss` (classification: top-5, CE), {} otherwise.
"""
from __future__ import annotations

import numpy as np

from ..errors import MRDError

PREPROCESS_MODES = ("correct", "research")


class Objective:
    name = "objective"
    native_size: int | None = None     # the network's input size; None = any size
    renders_per_view = 1               # dual_buffer needs two independently seeded renders
    weights_used = "none"              # recorded in the report: none | pretrained | untrained | PATH
    prepare_calls = 0                  # counted so tests can check that target features are cached
    forward_calls = 0                  # network forward passes (renders and targets), for the benchmark
    has_classifier = False             # whether --classify is possible
    classify: int | None = None
    alpha = 1.0

    def __init__(self, weights: str = "pretrained", weights_dir: str | None = None, preprocess: str = "correct",
                 seed: int = 0, device: str | None = None, log=print, render_size=None, classify: int | None = None,
                 alpha: float = 0.8):
        """Pixel objectives take (and ignore) the network options so the loop can pass the same ones to all."""
        self._check_common(preprocess, classify, alpha)
        self.preprocess = preprocess
        self.log = log
        if render_size is not None:
            self.check_render_size(*render_size)

    def _check_common(self, preprocess, classify, alpha):
        if preprocess not in PREPROCESS_MODES:
            raise MRDError(f"unknown preprocessing {preprocess!r}: use {' or '.join(PREPROCESS_MODES)}")
        if classify is not None:
            if not self.has_classifier:
                from . import REGISTRY, objective_class
                able = [n for n in REGISTRY if getattr(objective_class(n), "has_classifier", False)]
                raise MRDError(f"{self.name} has no classifier head: --classify works with {', '.join(able)}")
            if isinstance(classify, bool) or not isinstance(classify, (int, np.integer)) or not 0 <= classify < 1000:
                raise MRDError(f"class index {classify!r} is not an ImageNet class: give an integer 0..999 "
                               "(e.g. 235 German shepherd, 291 lion, 372 baboon)")
            if not 0.0 <= float(alpha) <= 1.0:
                raise MRDError(f"alpha {alpha} is outside [0, 1]: the loss is (1-alpha)*CE + alpha*metamer loss")

    @property
    def metamer_weight(self) -> float:
        """The factor on the metamer loss inside `loss` (alpha when classifying, else 1). The research code scales
        any regularizer by the same factor: total = (1-alpha)*CE + alpha*(metamer + regularizers)."""
        return self.alpha if self.classify is not None else 1.0

    def check_render_size(self, width: int, height: int) -> None:
        """Raises MRDError when renders of this size cannot be fed to the objective (call before rendering)."""
        if int(width) < 1 or int(height) < 1:
            raise MRDError(f"render size {width}x{height} is empty: give a positive width and height")

    def describe(self) -> dict:
        d = {"name": self.name, "native_size": self.native_size, "weights": self.weights_used,
             "preprocess": getattr(self, "preprocess", "correct")}
        if self.classify is not None:
            d.update(classify=int(self.classify), alpha=float(self.alpha))
        return d

    def prepare(self, target):
        raise NotImplementedError

    def loss(self, render, target_features, second_render=None):
        raise NotImplementedError

    def similarity(self, target_features) -> float:
        raise NotImplementedError

    def last_features(self) -> np.ndarray | None:
        return None

    def step_info(self) -> dict:
        return {}
