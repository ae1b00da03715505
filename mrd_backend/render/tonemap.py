"""The one tone map every render and target goes through before an objective: Reinhard, then sRGB, clamped."""
from __future__ import annotations

import numpy as np

from ..scene.images import to_srgb


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """The sRGB transfer curve (scene/images.py) of linear values, clamped to [0, 1], in the input's float type."""
    return to_srgb(x).astype(np.result_type(np.asarray(x).dtype, np.float32))


def to_ldr(img):
    """Dr.Jit (or numpy) linear radiance -> display sRGB in [0, 1], differentiable in Dr.Jit."""
    if isinstance(img, np.ndarray):
        return linear_to_srgb(np.maximum(img / (1.0 + img), 0.0))
    import drjit as dr
    x = dr.maximum(img / (1.0 + img), 0.0)
    srgb = dr.select(x <= 0.0031308, 12.92 * x, 1.055 * dr.power(x, 1 / 2.4) - 0.055)
    return dr.clip(srgb, 0.0, 1.0)


def to_uint8(img_ldr: np.ndarray) -> np.ndarray:
    return (np.clip(np.asarray(img_ldr), 0, 1) * 255 + 0.5).astype(np.uint8)
