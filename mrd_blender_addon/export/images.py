"""Image textures and environment images -> linear float arrays (row 0 at the top)."""
from __future__ import annotations

import os

import bpy
import numpy as np

from .. import bpy_arrays
from .errors import ExportError

MAX_TEXTURE_SIZE = 4096   # larger material textures are box-filtered down (memory of the .npz and Mitsuba)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _box_down(img: np.ndarray, max_width: int) -> tuple[np.ndarray, int]:
    factor = 1
    while img.shape[1] // factor > max_width:
        factor *= 2
    if factor == 1:
        return img, 1
    h, w = (img.shape[0] // factor) * factor, (img.shape[1] // factor) * factor
    small = img[:h, :w].reshape(h // factor, factor, w // factor, factor, -1).mean((1, 3))
    return small.astype(np.float32), factor


def _image_path(image) -> str:
    try:
        return bpy.path.abspath(image.filepath, library=image.library)
    except TypeError:  # very old signature
        return bpy.path.abspath(image.filepath)


def image_array(image, where: str, max_size: int = MAX_TEXTURE_SIZE, notes: list | None = None) -> np.ndarray:
    """An image's pixels as linear float32 (H, W, C>=3), row 0 at the top. Raises ExportError when it cannot be
    read (a missing file), naming where it is used."""
    if image is None:
        raise ExportError(f"{where} has no image: open one in the node or remove the node")
    if image.source in ("FILE", "SEQUENCE", "TILED") and image.packed_file is None:
        path = _image_path(image)
        if not os.path.isfile(path):
            raise ExportError(f"image {image.name!r} used by {where} is missing (file {path!r}): relink it "
                              "(File > External Data > Find Missing Files) or remove the node")
    w, h = image.size[:]
    ch = image.channels
    if w == 0 or h == 0 or ch == 0:
        raise ExportError(f"image {image.name!r} used by {where} cannot be read (size {w}x{h}): check the file")
    img = bpy_arrays.image_pixels(image)
    if ch == 1:
        img = np.repeat(img, 3, 2)
    elif ch == 2:
        img = np.concatenate([img[..., :1]] * 3, 2)
    img = np.ascontiguousarray(img[..., :3])
    space = image.colorspace_settings.name
    if not image.is_float:
        if space in ("sRGB",):
            img = srgb_to_linear(img)
        elif space not in ("Non-Color", "Raw", "Linear", "Linear Rec.709", "Generic Data"):
            img = srgb_to_linear(img)
            if notes is not None:
                notes.append(f"{where}: image {image.name!r} is in colour space {space!r}, read as sRGB")
    img, factor = _box_down(img, max_size)
    if factor > 1 and notes is not None:
        notes.append(f"{where}: image {image.name!r} ({w}x{h}) reduced {factor}x to {img.shape[1]}x{img.shape[0]}")
    return np.ascontiguousarray(img, np.float32)
