"""Environment lighting: a file, an in-memory equirectangular array, a constant colour, or one we generate.

Images follow Blender's world convention (centre column faces +X, top row +Z); `mitsuba_to_world` rotates
Mitsuba's envmap so that it lights the scene as Cycles does.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MRDError

# Mitsuba envmap local frame -> Blender world: local +Y (up) -> +Z, local +Z -> +X, local +X -> +Y.
ENVMAP_TO_BLENDER = np.array([[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]], np.float64)


@dataclass
class Environment:
    kind: str = "constant"          # constant | file | array
    color: tuple = (1.0, 1.0, 1.0)  # constant radiance (linear RGB)
    path: str | None = None         # .hdr / .exr / .png
    array: np.ndarray | None = None  # (H, W, 3) linear radiance, H x 2H
    strength: float = 1.0
    rotation_z: float = 0.0         # degrees, Blender's Mapping node rotation about Z
    name: str = "constant"

    def mitsuba_to_world(self) -> np.ndarray:
        a = np.radians(self.rotation_z)
        rz = np.eye(4)
        rz[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
        return rz @ ENVMAP_TO_BLENDER

    def to_mitsuba(self) -> dict:
        mi = _mi()
        if self.kind == "constant":
            return {"type": "constant", "radiance": {"type": "rgb", "value": [c * self.strength for c in self.color]}}
        d = {"type": "envmap", "scale": float(self.strength), "to_world": mi.ScalarTransform4f(self.mitsuba_to_world())}
        if self.kind == "file":
            if not self.path or not Path(self.path).is_file():
                raise MRDError(f"environment image {self.path} does not exist: give an .hdr or .exr file, "
                               "or use a bundled environment (`mrd scenes` lists them)")
            d["filename"] = str(self.path)
        elif self.kind == "array":
            arr = np.ascontiguousarray(np.asarray(self.array, np.float32)[..., :3])
            if arr.ndim != 3 or arr.shape[0] < 2 or arr.shape[1] < 2:
                raise MRDError(f"environment array must be (H, W, 3), got {arr.shape}")
            d["bitmap"] = mi.Bitmap(arr)
        else:
            raise MRDError(f"unknown environment kind {self.kind!r}: use constant, file or array")
        return d


def _mi():
    from ..render.variant import mitsuba  # lazy: Blender imports scene/, Mitsuba only to render
    return mitsuba()


def _directions(h: int, w: int):
    """Blender-frame unit direction of every texel centre of an equirectangular image (centre column = +X)."""
    v = (np.arange(h) + 0.5) / h
    u = (np.arange(w) + 0.5) / w
    uu, vv = np.meshgrid(u, v)
    phi = (0.5 - uu) * 2 * np.pi        # azimuth, 0 at the centre column (+X)
    theta = vv * np.pi                  # from +Z (top row) down
    return np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], -1)


def _blob(d, direction, sharpness):
    c = np.asarray(direction, np.float64)
    c /= np.linalg.norm(c)
    return np.exp(sharpness * ((d @ c) - 1.0))[..., None]


def studio(h: int = 128) -> np.ndarray:
    """A grey studio: dim walls, a brighter floor bounce and three soft boxes (key, fill, rim)."""
    d = _directions(h, 2 * h)
    z = d[..., 2:3]
    img = 0.04 + 0.04 * np.clip(z, 0, 1) + 0.02 * np.clip(-z, 0, 1)
    img = np.repeat(img, 3, -1)
    img += 12.0 * _blob(d, (1.0, -1.0, 1.2), 12) * np.array([1.0, 0.97, 0.92])
    img += 4.0 * _blob(d, (-1.0, -0.6, 0.5), 8) * np.array([0.9, 0.95, 1.0])
    img += 6.0 * _blob(d, (-0.3, 1.0, 0.8), 20)
    return img.astype(np.float32)


def sky(h: int = 128) -> np.ndarray:
    """A clear sky with a sun 35 degrees high, a bright horizon and a dark green-brown ground."""
    d = _directions(h, 2 * h)
    z = d[..., 2:3]
    zenith, horizon, ground = np.array([0.18, 0.35, 0.85]), np.array([0.85, 0.9, 1.0]), np.array([0.12, 0.11, 0.08])
    t = np.clip(z, 0, 1) ** 0.5
    img = np.where(z >= 0, horizon * (1 - t) + zenith * t, ground + (horizon - ground) * np.exp(12 * z) * 0.3)
    sun_dir = (np.cos(np.radians(35)) * np.cos(np.radians(30)), np.cos(np.radians(35)) * np.sin(np.radians(30)),
               np.sin(np.radians(35)))
    img = img + 400.0 * _blob(d, sun_dir, 4000) * np.array([1.0, 0.95, 0.85]) + 1.5 * _blob(d, sun_dir, 40)
    return img.astype(np.float32)


def garden(h: int = 128) -> np.ndarray:
    """A shaded greenhouse: soft, greenish diffuse light from above and patchy bright openings."""
    d = _directions(h, 2 * h)
    z = d[..., 2:3]
    rng = np.random.default_rng(7)
    base = np.where(z >= 0, np.array([0.55, 0.75, 0.5]) * (0.6 + 0.6 * z), np.array([0.15, 0.13, 0.1]))
    img = base.copy()
    for _ in range(6):
        c = rng.normal(size=3)
        c[2] = abs(c[2]) + 0.3
        img = img + 2.5 * _blob(d, c, 25) * np.array([1.0, 1.0, 0.9])
    return img.astype(np.float32)


GENERATED = {"studio": studio, "sky": sky, "garden": garden}
# Photographed HDRIs (Poly Haven, CC0; 1K EXRs from Blender's studio lights, assets/hdri/LICENSE.txt): real lighting,
# as the research lit its scenes with the hallstatt/skybox/garden HDRIs. Blender's own world convention applies.
HDRI_DIR = Path(__file__).resolve().parent.parent / "assets" / "hdri"
BUNDLED_HDRIS = ("forest", "courtyard", "sunset", "city")


def bundled_hdri(name: str) -> Path:
    return HDRI_DIR / f"{name}.exr"


def named_environment(name: str, resolution: int = 128) -> Environment:
    if name == "constant":
        return Environment("constant", name="constant")
    if name in GENERATED:
        return Environment("array", array=GENERATED[name](resolution), name=name)
    if name in BUNDLED_HDRIS:
        return Environment("file", path=str(bundled_hdri(name)), name=name)
    p = Path(name)
    if p.suffix.lower() in (".hdr", ".exr", ".png", ".jpg", ".jpeg") or p.exists():
        return Environment("file", path=str(p), name=p.stem)
    raise MRDError(f"unknown environment {name!r}: use one of {', '.join(['constant', *GENERATED, *BUNDLED_HDRIS])} "
                   "or the path of an .hdr/.exr file")
