"""The bundled shape targets: Blender's Suzanne (exported by scripts/export_suzanne.py) and parametric shapes
generated here (a trefoil knot, a lumpy blob). Each is a function returning (vertices, faces)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..scene.meshes import load_mesh

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def _tube(curve: np.ndarray, radius: float, sides: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """A closed tube (a closed manifold) around a closed polyline curve (N, 3)."""
    n = len(curve)
    t = np.roll(curve, -1, 0) - np.roll(curve, 1, 0)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    ref = np.array([0.0, 0.0, 1.0])
    nrm = np.cross(t, ref)
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    bin_ = np.cross(t, nrm)
    a = 2 * np.pi * np.arange(sides) / sides
    ring = np.cos(a)[None, :, None] * nrm[:, None] + np.sin(a)[None, :, None] * bin_[:, None]
    v = (curve[:, None] + radius * ring).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(n), np.arange(sides), indexing="ij")
    a0, a1 = i * sides + j, i * sides + (j + 1) % sides
    b0, b1 = ((i + 1) % n) * sides + j, ((i + 1) % n) * sides + (j + 1) % sides
    f = np.concatenate([np.stack([a0, b0, b1], -1).reshape(-1, 3), np.stack([a0, b1, a1], -1).reshape(-1, 3)])
    # Which way these triangles wind depends on the curve's frame; a one-sided BSDF needs outward normals
    # (inward ones rendered the knot as a black silhouette), so wind them to a positive signed volume.
    p0, p1, p2 = (v[f[:, k]] for k in range(3))
    if np.einsum("ij,ij->i", p0, np.cross(p1, p2)).sum() < 0:
        f = f[:, ::-1]
    return v.astype(np.float32), f.astype(np.int32)


def knot() -> tuple[np.ndarray, np.ndarray]:
    """A trefoil knot tube, about 2 units across."""
    s = np.linspace(0, 2 * np.pi, 240, endpoint=False)
    curve = np.stack([np.sin(s) + 2 * np.sin(2 * s), np.cos(s) - 2 * np.cos(2 * s), -np.sin(3 * s)], 1) / 3.0
    return _tube(curve, 0.22, 20)


def blob() -> tuple[np.ndarray, np.ndarray]:
    """A lumpy, star-shaped sphere: low-frequency bumps on a level-4 icosphere."""
    import trimesh
    m = trimesh.creation.icosphere(subdivisions=4)
    d = np.asarray(m.vertices)
    r = 1 + 0.25 * np.sin(3 * d[:, 0] + 1) * np.cos(2 * d[:, 1]) + 0.2 * np.sin(4 * d[:, 2] + 0.5)
    return (d * r[:, None] * np.array([1.0, 0.8, 1.1])).astype(np.float32), np.asarray(m.faces, np.int32)


def suzanne() -> tuple[np.ndarray, np.ndarray]:
    return load_mesh(ASSETS / "meshes" / "suzanne.ply")


TARGET_MESHES = {"suzanne": suzanne, "knot": knot, "blob": blob}
