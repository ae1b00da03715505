"""Forward-gradient images (`--forward`): how the tone-mapped render changes along one direction in parameter space.

As in the research code, the direction for a shape is a uniform (1, 1, 1) translation of every vertex (every entry of
the vertex buffer seeded with 1); for a material every optimized entry is seeded with 1. Three images: the raw
derivative (sRGB-encoded, negatives clipped), its magnitude (per-pixel L2 over RGB / its RMS, clamped to 1) and its
signed luminance (Rec. 709 weights / RMS, clamped to [-1, 1]; red positive, blue negative).
"""
from __future__ import annotations

import numpy as np


def derivative_image(mi, scene, params, keys, sensor, spp: int = 8, seed: int = 42) -> np.ndarray:
    import drjit as dr

    from .tonemap import to_ldr
    leaves = []
    for k in keys:
        v = type(params[k])(dr.detach(params[k]))
        dr.enable_grad(v)
        params[k] = v
        leaves.append(v)
    params.update()
    img = to_ldr(mi.render(scene, params, sensor=sensor, spp=spp, seed=seed))
    for v in leaves:
        dr.forward(v, dr.ADFlag.ClearVertices)  # seeds the whole buffer with 1, propagates to the render only
    g = np.asarray(dr.grad(img))
    for k, v in zip(keys, leaves):
        params[k] = dr.detach(v)
    params.update()
    return g


def visualize(g: np.ndarray) -> dict[str, np.ndarray]:
    """The three research images of one derivative (H, W, 3), each as display values in [0, 1]."""
    from .tonemap import linear_to_srgb
    raw = linear_to_srgb(np.clip(g, 0, None))
    mag = np.linalg.norm(g, axis=-1)
    mag = np.clip(mag / (np.sqrt((mag ** 2).mean()) + 1e-12), 0, 1)
    lum = g @ np.array([0.2126, 0.7152, 0.0722])
    s = np.clip(lum / (np.sqrt((lum ** 2).mean()) + 1e-12), -1, 1)
    signed = np.stack([0.5 + 0.5 * np.maximum(s, 0), np.full_like(s, 0.5), 0.5 + 0.5 * np.maximum(-s, 0)], -1)
    return {"raw": raw, "magnitude": np.repeat(mag[..., None], 3, -1), "signed": signed}
