"""The held-out control and the held-out viewpoints.

- Control: the target mesh rotated by 10 degrees about the scene's up axis (+Z: our world frame is Blender's, Z-up;
  the research code's +Y is Mitsuba's up) through the mesh centre (its bounding-box centre), rendered from the
  SAME cameras as the target. Every similarity is also computed against it.
- Held-out viewpoints: a second rig of views that interleave with the optimization rig and are never used in
  optimization (`CameraRig.held_out()`); result and target are compared on it at the end. `heldout_rig(spec, n)`
  makes it at least `n` views (the equivalence test's default is 12) and checks that no held-out camera coincides
  with an optimization camera; a rig of fixed cameras (material scenes) gets a lattice at their mean distance.
"""
from __future__ import annotations

import copy
import math

import numpy as np

from ..errors import MRDError

UP = (0.0, 0.0, 1.0)
CONTROL_DEGREES = 10.0


def rotation_matrix(axis=UP, degrees: float = CONTROL_DEGREES) -> np.ndarray:
    """3x3 right-handed rotation by `degrees` about `axis` (Rodrigues)."""
    k = np.asarray(axis, np.float64)
    nk = np.linalg.norm(k)
    if nk == 0:
        raise MRDError("the rotation axis is the zero vector: give a direction such as 0 0 1")
    k = k / nk
    a = math.radians(degrees)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(a) * kx + (1 - math.cos(a)) * kx @ kx


def mesh_center(vertices: np.ndarray) -> np.ndarray:
    v = np.asarray(vertices, np.float64)
    return (v.min(0) + v.max(0)) / 2


def rotate_about_up(vertices: np.ndarray, degrees: float = CONTROL_DEGREES, center=None, axis=UP) -> np.ndarray:
    """Vertices rotated by `degrees` about the vertical axis through `center` (default: the bounding-box centre)."""
    v = np.asarray(vertices, np.float64)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
        raise MRDError(f"vertices must be (V, 3), got shape {v.shape}")
    c = mesh_center(v) if center is None else np.asarray(center, np.float64)
    return ((v - c) @ rotation_matrix(axis, degrees).T + c).astype(np.float32)


def control_spec(spec, degrees: float = CONTROL_DEGREES):
    """A copy of a SceneSpec whose object is rotated about +Z through its centre and whose cameras are pinned to
    the original's matrices (the rotated mesh's bounds must not move the cameras)."""
    from ..scene.cameras import CameraRig
    out = copy.copy(spec)
    rig = spec.cameras
    out.cameras = CameraRig(rig.n_views, rig.fov, rig.width, rig.height, rig.distance, rig.center,
                            [np.asarray(m) for m in spec.camera_matrices()], rig.offset)
    center = mesh_center(spec.vertices)
    out.vertices = rotate_about_up(spec.vertices, degrees, center)
    if spec.normals is not None:
        out.normals = (np.asarray(spec.normals, np.float64) @ rotation_matrix(UP, degrees).T).astype(np.float32)
    out.name = f"{spec.name}-control{degrees:g}deg"
    return out


def heldout_rig(spec, views: int | None = None):
    """The held-out camera rig of a SceneSpec, pinned to the target's bounds: with `views` None, the views between
    the optimization views (same count; None for a rig of fixed matrices, as before); with `views` given, a
    lattice of max(views, optimization views) views (for fixed matrices: at their mean distance from the object's
    centre), offset so that no camera coincides with an optimization camera."""
    from ..scene.cameras import CameraRig
    rig = spec.cameras
    if views is None:
        if rig.matrices:
            return None
        ho = rig.held_out()
    else:
        opt = [np.asarray(m) for m in spec.camera_matrices()]
        center, _ = spec.bounds()
        dist = rig.distance
        if rig.matrices:
            dist = float(np.mean([np.linalg.norm(np.asarray(m)[:3, 3] - center) for m in opt]))
        n = max(int(views), 1 if rig.matrices else rig.n_views)
        ho = None
        for offset in (rig.offset + 0.5, rig.offset + 0.25, rig.offset + 0.75, rig.offset + 0.125):
            cand = CameraRig(n, rig.fov, rig.width, rig.height, dist, rig.center, [], offset)
            if not rigs_overlap(spec.camera_matrices(cand), opt, 1e-3):
                ho = cand
                break
        if ho is None:
            raise MRDError(f"no held-out rig of {n} views avoids the {len(opt)} optimization cameras: change -n")
    return CameraRig(ho.n_views, ho.fov, ho.width, ho.height, ho.distance, ho.center,
                     [np.asarray(m) for m in spec.camera_matrices(ho)], ho.offset)


def rigs_overlap(a: list, b: list, tol: float = 1e-6) -> bool:
    """True when any camera position of one rig coincides with one of the other."""
    pa = np.array([np.asarray(m)[:3, 3] for m in a])
    pb = np.array([np.asarray(m)[:3, 3] for m in b])
    d = np.linalg.norm(pa[:, None, :] - pb[None, :, :], axis=2)
    return bool((d < tol * max(1.0, float(np.abs(pa).max()))).any())
