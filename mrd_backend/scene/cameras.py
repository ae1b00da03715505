"""Camera rigs as plain numpy 4x4 `to_world` matrices, in Blender's Z-up world frame.

The research rig is a Fibonacci lattice whose pole is Mitsuba's +Z with cameras looking at the origin, up +Y.
Its point (x, y, z) is Blender's (x, -z, y), so here the lattice is mapped that way, with up +Z, centred on the
object and scaled to its bounding sphere.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

GOLDEN = (1 + 5 ** 0.5) / 2


def fibonacci_directions(n: int, offset: float = 0.0) -> np.ndarray:
    """n unit vectors (Blender frame), the research lattice for offset 0. offset 0.5 gives a rig whose views fall
    between the offset-0 ones: the held-out viewpoints."""
    i = np.arange(n, dtype=np.float64) + offset
    theta = 2 * np.pi * i / GOLDEN
    psi = np.arccos(np.clip(1 - 2 * (i + 0.5) / (n + offset * 2), -1, 1))
    x, y, z = np.cos(theta) * np.sin(psi), np.sin(theta) * np.sin(psi), np.cos(psi)
    return np.stack([x, -z, y], axis=1)  # research (Y-up) -> Blender (Z-up)


def look_at(origin, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Mitsuba's look_at as a numpy matrix: columns are left, up, forward (+Z looks at the target), origin."""
    origin, target, up = (np.asarray(a, np.float64) for a in (origin, target, up))
    d = target - origin
    d /= np.linalg.norm(d)
    left = np.cross(up, d)
    if np.linalg.norm(left) < 1e-9:  # looking straight along up: any perpendicular will do
        left = np.cross((1.0, 0.0, 0.0), d)
    left /= np.linalg.norm(left)
    new_up = np.cross(d, left)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = left, new_up, d, origin
    return m


def blender_camera_to_world(matrix_world) -> np.ndarray:
    """A Blender camera's matrix_world as a Mitsuba sensor to_world (Blender looks down -Z, Mitsuba down +Z)."""
    m = np.asarray(matrix_world, np.float64).copy()
    m[:3, :3] /= np.linalg.norm(m[:3, :3], axis=0)  # drop object scale
    return m @ np.diag([-1.0, 1.0, -1.0, 1.0])


@dataclass
class CameraRig:
    """Views around the object. With `matrices` set, those exact cameras are used (a Blender camera, a material
    scene's fixed four); otherwise `n_views` lattice views at `distance` (None: 2.8 bounding-sphere radii)."""
    n_views: int = 25
    fov: float = 45.0
    width: int = 256
    height: int = 256
    distance: float | None = None
    center: tuple | None = None
    matrices: list = field(default_factory=list)
    offset: float = 0.0

    def to_worlds(self, center, radius) -> list[np.ndarray]:
        if self.matrices:
            return [np.asarray(m, np.float64) for m in self.matrices]
        c = np.asarray(self.center if self.center is not None else center, np.float64)
        dist = self.distance if self.distance is not None else 2.8 * radius
        return [look_at(c + dist * d, c) for d in fibonacci_directions(self.n_views, self.offset)]

    def held_out(self) -> "CameraRig":
        """A rig of the same size whose views interleave with this one's and never coincide with them."""
        return CameraRig(self.n_views, self.fov, self.width, self.height, self.distance, self.center,
                         [], self.offset + 0.5)
