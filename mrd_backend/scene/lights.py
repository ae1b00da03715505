"""Lamps (point, spot, sun, area) as plain numpy, converted from Blender's units the way Cycles lights them.

`from_blender` takes a lamp's Blender values (no bpy: the add-on reads them) and returns a `Light` in Mitsuba's
units; `Light.to_mitsuba` makes the emitter (or, for an area lamp, the emitting shape). Frames: Blender lamps shine
along their local -Z, Mitsuba's along +Z, so every frame is turned 180 degrees about local X.

Cycles' units (checked against Cycles renders, docs/blender.md):
- point and spot of power P watts: radiant intensity P / (4 pi) W/sr (a spot keeps the point's intensity inside its
  cone); the lamp's radius only softens shadows (a Mitsuba point light is a point);
- sun of strength S: irradiance S W/m^2 on a surface facing it;
- area of power P and area A (object scale included): radiance P / (pi A) from its front side (Blender 4.0+;
  P / (4 A) before 4.0); with `normalize` off (Blender 4.x+) the power is per square metre, i.e. P A in total.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import MRDError

KINDS = ("point", "spot", "sun", "area")
AREA_SHAPES = {"SQUARE": "rectangle", "RECTANGLE": "rectangle", "DISK": "disk", "ELLIPSE": "disk"}
# Blender lamp frame (shines along -Z) -> Mitsuba's (shines along +Z): 180 degrees about local X.
FLIP = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass
class Light:
    kind: str                       # point | spot | sun | area
    value: tuple = (1.0, 1.0, 1.0)  # RGB intensity (point, spot), irradiance (sun) or radiance (area)
    to_world: list = field(default_factory=lambda: np.eye(4).tolist())  # Mitsuba frame (shines along +Z)
    shape: str = "rectangle"        # area: rectangle | disk (its extent is in to_world's X and Y scale)
    cutoff_angle: float = 20.0      # spot: half angle of the cone, degrees
    beam_width: float = 15.0        # spot: half angle of full intensity, degrees
    name: str = "light"

    def to_mitsuba(self) -> dict:
        from ..render.variant import mitsuba  # lazy: Blender imports scene/, Mitsuba only to render
        mi = mitsuba()
        rgb = {"type": "rgb", "value": [float(x) for x in self.value]}
        m = mi.ScalarTransform4f(np.asarray(self.to_world, np.float64))
        if self.kind == "point":
            return {"type": "point", "to_world": m, "intensity": rgb}
        if self.kind == "spot":
            return {"type": "spot", "to_world": m, "intensity": rgb, "cutoff_angle": float(self.cutoff_angle),
                    "beam_width": float(min(self.beam_width, self.cutoff_angle))}
        if self.kind == "sun":
            return {"type": "directional", "to_world": m, "irradiance": rgb}
        if self.kind == "area":
            if self.shape not in ("rectangle", "disk"):
                raise MRDError(f"area light {self.name!r} has shape {self.shape!r}: use rectangle or disk")
            # A black surface: Cycles' lamps reflect nothing.
            return {"type": self.shape, "to_world": m, "emitter": {"type": "area", "radiance": rgb},
                    "bsdf": {"type": "diffuse", "reflectance": {"type": "rgb", "value": [0.0, 0.0, 0.0]}}}
        raise MRDError(f"unknown light kind {self.kind!r}: use one of {', '.join(KINDS)}")

    def is_visible_shape(self) -> bool:
        """An area lamp is a surface in the scene (object masks must leave it out)."""
        return self.kind == "area"


def _rigid(matrix) -> np.ndarray:
    """Rotation + translation of a (possibly scaled) 4x4 matrix."""
    m = np.asarray(matrix, np.float64)
    u, _, vt = np.linalg.svd(m[:3, :3])
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = r, m[:3, 3]
    return out


def spot_beam_width(spot_size: float, spot_blend: float) -> float:
    """Mitsuba's beam width (degrees) for Blender's cone angle and blend (radians, 0-1).

    Cycles fades with a smoothstep in cos(angle) over [cos(size / 2), cos(size / 2) + blend (1 - cos(size / 2))];
    Mitsuba fades linearly in angle from the beam width to the cutoff. The two ramps are made to cross half
    intensity at the same angle."""
    half = spot_size / 2
    c = math.cos(half)
    mid = math.degrees(math.acos(min(1.0, c + 0.5 * spot_blend * (1 - c))))
    return max(0.0, 2 * mid - math.degrees(half))


def from_blender(kind: str, energy: float, color, matrix_world, *, name: str = "light", shape: str = "SQUARE",
                 size: float = 1.0, size_y: float = 1.0, spot_size: float = math.radians(45), spot_blend: float = 0.15,
                 normalize: bool = True, blender_version: tuple = (5, 0, 0)) -> Light:
    """A Blender lamp as Cycles lights it. `kind` is Blender's type (POINT, SPOT, SUN, AREA); `energy` is its power
    in W (strength in W/m^2 for a sun), exposure already applied; `color` linear RGB; `matrix_world` 4x4."""
    kind = kind.upper()
    color = np.asarray(color, np.float64)[:3]
    m = np.asarray(matrix_world, np.float64)
    if m.shape != (4, 4) or not np.isfinite(m).all():
        raise MRDError(f"light {name!r} has an invalid transform")
    if kind in ("POINT", "SPOT"):
        value = color * energy / (4 * math.pi)
        to_world = (_rigid(m) @ FLIP).tolist()
        if kind == "POINT":
            return Light("point", tuple(value), to_world, name=name)
        beam = spot_beam_width(spot_size, spot_blend)
        return Light("spot", tuple(value), to_world, cutoff_angle=math.degrees(spot_size / 2), beam_width=beam,
                     name=name)
    if kind == "SUN":
        return Light("sun", tuple(color * energy), (_rigid(m) @ FLIP).tolist(), name=name)
    if kind == "AREA":
        if shape not in AREA_SHAPES:
            raise MRDError(f"area light {name!r} has shape {shape!r}: use SQUARE, RECTANGLE, DISK or ELLIPSE")
        sx = size
        sy = size if shape in ("SQUARE", "DISK") else size_y
        local = np.diag([sx / 2, sy / 2, 1.0, 1.0])   # Mitsuba's rectangle and disk span [-1, 1]^2
        to_world = m @ local @ FLIP
        ax, ay = np.linalg.norm(m[:3, 0]) * sx, np.linalg.norm(m[:3, 1]) * sy
        area = ax * ay * (math.pi / 4 if AREA_SHAPES[shape] == "disk" else 1.0)
        if area <= 0:
            raise MRDError(f"area light {name!r} has no area (size {sx} x {sy}): give it a size above 0")
        power = energy * (1.0 if normalize else area)
        per = math.pi if tuple(blender_version) >= (4, 0, 0) else 4.0
        return Light("area", tuple(color * power / (per * area)), to_world.tolist(), shape=AREA_SHAPES[shape],
                     name=name)
    raise MRDError(f"light {name!r} is of type {kind!r}: use POINT, SPOT, SUN or AREA")
