"""Image files and colour: textures read as linear float arrays, resampled, and the one sRGB transfer pair (the tone
map, render/tonemap.py, and the texture PNGs use it). numpy at module level; Mitsuba reads files and torch
resamples, each imported where it is needed, because Blender's Python imports scene/ without them."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import MRDError


def to_srgb(linear: np.ndarray) -> np.ndarray:
    """The sRGB transfer curve of linear values, clamped to [0, 1] (float64)."""
    x = np.clip(np.asarray(linear, np.float64), 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def from_srgb(srgb: np.ndarray) -> np.ndarray:
    x = np.asarray(srgb, np.float64)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def read_texture(path) -> np.ndarray:
    """An image file as a linear float32 (H, W, C) array (8-bit files are decoded from sRGB)."""
    from ..render.variant import mitsuba  # Mitsuba's bitmap reader: EXR, HDR, PNG and JPG alike
    mi = mitsuba()
    p = Path(path)
    if not p.is_file():
        raise MRDError(f"texture file {p} does not exist: give a PNG, JPG or EXR image")
    try:
        bmp = mi.Bitmap(str(p))
        fmt = mi.Bitmap.PixelFormat.Y if bmp.channel_count() in (1, 2) else mi.Bitmap.PixelFormat.RGB
        arr = np.array(bmp.convert(fmt, mi.Struct.Type.Float32, srgb_gamma=False), np.float32)
    except Exception as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise MRDError(f"cannot read texture file {p} ({msg[:200]}): give a PNG, JPG or EXR image") from None
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.size == 0 or not np.isfinite(arr).all():
        raise MRDError(f"texture file {p} is empty or holds NaN/inf values: give another image")
    return arr


def resize(arr: np.ndarray, w: int, h: int) -> np.ndarray:
    """(H, W, C) float image resampled to (h, w, C): antialiased bilinear (texel centres)."""
    arr = np.asarray(arr, np.float32)
    if arr.shape[:2] == (h, w):
        return arr.copy()
    import torch  # torch's antialiased bilinear filter
    t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None]
    out = torch.nn.functional.interpolate(t, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return out[0].numpy().transpose(1, 2, 0).astype(np.float32)
