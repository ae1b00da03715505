"""Pixel-level measures per view between tone-mapped sRGB images (H, W, 3) in [0, 1]:

- FLIP (NVIDIA's perceptual difference, package `flip-evaluator`, LDR mode, sRGB inputs): mean error (0 = identical,
  lower is better) and the per-pixel error map;
- PSNR in dB (data range 1; None when the images are identical);
- SSIM (scikit-image, colour channels averaged, Gaussian-free 7x7 window, smaller for tiny images);
- LPIPS as 1 - distance through the model zoo's `lpips` objective, when one is given (None otherwise).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..errors import MRDError


def as_image(x, name: str = "image") -> np.ndarray:
    """float32 (H, W, 3) in [0, 1] from numpy / Dr.Jit / torch (H, W, C>=3)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    elif type(x).__module__.startswith("drjit"):
        import drjit as dr
        x = dr.detach(x)
    a = np.asarray(x, np.float32)
    if a.ndim != 3 or a.shape[2] < 3 or a.shape[0] < 1 or a.shape[1] < 1:
        raise MRDError(f"{name} must be an (H, W, 3) image, got shape {a.shape}")
    return np.ascontiguousarray(np.clip(a[..., :3], 0.0, 1.0))


def flip(reference, test) -> tuple[float, np.ndarray]:
    """(mean FLIP error, (H, W) error map) of `test` against `reference`, LDR, sRGB inputs."""
    try:
        import flip_evaluator
    except ImportError:
        raise MRDError("FLIP needs the flip-evaluator package: pip install flip-evaluator") from None
    ref, tst = as_image(reference, "FLIP reference"), as_image(test, "FLIP test image")
    if ref.shape != tst.shape:
        raise MRDError(f"FLIP needs images of one size, got {ref.shape} and {tst.shape}")
    emap, mean, _ = flip_evaluator.evaluate(ref, tst, "LDR", inputsRGB=True, applyMagma=False, computeMeanError=True)
    emap = np.asarray(emap, np.float32).reshape(ref.shape[:2])
    return float(mean), emap


def psnr(a, b) -> float | None:
    a, b = as_image(a), as_image(b)
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return None if mse == 0 else 10 * math.log10(1.0 / mse)


def ssim(a, b) -> float | None:
    from skimage.metrics import structural_similarity
    a, b = as_image(a), as_image(b)
    side = min(a.shape[0], a.shape[1])
    win = min(7, side if side % 2 else side - 1)
    if win < 3:
        return None
    return float(structural_similarity(a, b, channel_axis=-1, data_range=1.0, win_size=win))


def lpips_similarity(objective, reference, test) -> float:
    """1 - LPIPS distance via a model-zoo objective (its `similarity` after one `loss` call)."""
    from ..render.variant import mitsuba
    mi = mitsuba()
    feats = objective.prepare(mi.TensorXf(as_image(reference)))
    objective.loss(mi.TensorXf(as_image(test)), feats)  # lpips takes one render per view
    return float(objective.similarity(feats))


def pixel_metrics(results: list, targets: list, lpips=None) -> tuple[dict, list[np.ndarray]]:
    """Per-view FLIP, PSNR, SSIM (and LPIPS with an lpips objective) of results against targets.
    Returns ({"per_view": {measure: [...]}, "mean": {measure: x}}, FLIP error maps)."""
    from .similarity import mean_or_none
    if len(results) != len(targets):
        raise MRDError(f"cannot pair {len(results)} result images with {len(targets)} targets: one per view")
    pv = {"flip": [], "psnr": [], "ssim": [], "lpips": []}
    maps = []
    for r, t in zip(results, targets):
        f, m = flip(t, r)
        pv["flip"].append(f)
        maps.append(m)
        pv["psnr"].append(psnr(t, r))
        pv["ssim"].append(ssim(t, r))
        pv["lpips"].append(lpips_similarity(lpips, t, r) if lpips is not None else None)
    return {"per_view": pv, "mean": {k: mean_or_none(v) for k, v in pv.items()}}, maps


def flip_grid_png(maps: list[np.ndarray], path: Path, per_row: int = 5, means: list | None = None) -> Path:
    """FLIP error maps in a grid (magma, 0..1 shared scale; views left to right, top to bottom) as one PNG. Drawn
    with numpy and a colour table, not a matplotlib figure: a figure of many panels costs seconds. Each view's mean
    error is in the report (pixels.*.per_view.flip); `means` is accepted for callers that pass it."""
    import imageio.v3 as iio
    from matplotlib import colormaps
    lut = (np.asarray(colormaps["magma"](np.linspace(0, 1, 256)))[:, :3] * 255).astype(np.uint8)
    n = len(maps)
    if n == 0:
        raise MRDError("no FLIP maps to draw")
    h, w = np.asarray(maps[0]).shape[:2]
    cols = min(per_row, n)
    rows = (n + per_row - 1) // per_row
    pad = 2
    canvas = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for k, m in enumerate(maps):
        r, c = divmod(k, cols)
        idx = np.clip(np.asarray(m, np.float32) * 255 + 0.5, 0, 255).astype(np.uint8)
        canvas[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = lut[idx]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: iio.imwrite(tmp, canvas, extension=".png"))
