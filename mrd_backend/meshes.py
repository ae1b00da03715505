"""Triangle meshes as plain numpy (float32 vertices (V,3), int32 faces (F,3)): loading, checks, metrics, remeshing."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .errors import MRDError


def load_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and faces of a PLY/OBJ/STL/... file, triangulated, with duplicate vertices merged."""
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise MRDError(f"mesh file {path} does not exist: give the path of a .ply or .obj file")
    try:
        mesh = trimesh.load(path, force="mesh", process=True)
    except Exception as exc:
        raise MRDError(f"cannot read mesh {path} ({type(exc).__name__}: {exc}): export it again as PLY or OBJ") from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise MRDError(f"mesh {path} has no triangles: give a file that contains a surface")
    return np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces, np.int32)


def save_ply(path: str | Path, vertices: np.ndarray, faces: np.ndarray) -> Path:
    """Writes a binary PLY atomically (temporary name, then rename) so readers never see half a file."""
    import trimesh

    mesh = trimesh.Trimesh(np.asarray(vertices, np.float64), np.asarray(faces), process=False)
    return atomic_write(Path(path), lambda tmp: mesh.export(tmp, file_type="ply"))


def icosphere(subdivisions: int = 5, radius: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The research start shape: a level-5 icosphere has 10,242 vertices."""
    import trimesh

    m = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return np.asarray(m.vertices, np.float32), np.asarray(m.faces, np.int32)


def check_mesh(vertices: np.ndarray, faces: np.ndarray, name: str = "mesh", closed: bool = False) -> None:
    """Rejects what would crash or silently break rendering and Large Steps, with a message saying what to do."""
    v = np.asarray(vertices)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
        raise MRDError(f"{name} has no vertices (shape {v.shape}): give a mesh with at least one triangle")
    if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise MRDError(f"{name} has no triangles (faces shape {f.shape}): triangulate it or give another mesh")
    if not np.isfinite(v).all():
        raise MRDError(f"{name} has NaN or infinite vertex coordinates: fix or re-export the mesh")
    if f.min() < 0 or f.max() >= len(v):
        raise MRDError(f"{name} has face indices outside 0..{len(v) - 1}: the file is corrupt, export it again")
    if closed:
        problems = manifold_problems(v, f)
        if problems:
            raise MRDError(f"{name} is not a closed manifold ({problems}): "
                           "the shape optimizer needs one; in Blender use Mesh > Clean Up > Merge by Distance "
                           "and fill holes, or start from the icosphere")


def manifold_problems(vertices: np.ndarray, faces: np.ndarray) -> str:
    """'' for a closed, edge-manifold surface; else a short description of what is wrong."""
    f = np.asarray(faces, np.int64)
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    out = []
    if (counts == 1).any():
        out.append(f"{int((counts == 1).sum())} boundary edges")
    if (counts > 2).any():
        out.append(f"{int((counts > 2).sum())} edges shared by more than two faces")
    unused = len(vertices) - len(np.unique(f))
    if unused:
        out.append(f"{unused} loose vertices")
    return ", ".join(out)


def bounding_sphere(vertices: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre of the bounding box and the radius of the sphere around it that holds every vertex."""
    v = np.asarray(vertices, np.float64)
    center = (v.min(0) + v.max(0)) / 2
    return center, float(np.linalg.norm(v - center, axis=1).max())


def normalize_to_bbox(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Maps points with the transform that sends the reference's bounding box to the unit cube's diagonal 1."""
    lo, hi = reference.min(0), reference.max(0)
    return (points - (lo + hi) / 2) / max(float(np.linalg.norm(hi - lo)), 1e-12)


def _surface_samples(vertices, faces, n, seed):
    import trimesh

    mesh = trimesh.Trimesh(vertices, faces, process=False)
    pts, idx = trimesh.sample.sample_surface(mesh, n, seed=seed)
    return np.asarray(pts), np.asarray(mesh.face_normals[idx])


def chamfer(vertices, faces, target_vertices, target_faces, n: int = 20000, seed: int = 0) -> dict:
    """Symmetric chamfer distance (mean of squared nearest-surface-sample distances, both ways) and normal
    consistency, after normalizing both meshes by the target's bounding box (diagonal 1)."""
    from scipy.spatial import cKDTree

    tv = np.asarray(target_vertices, np.float64)
    a, na = _surface_samples(normalize_to_bbox(np.asarray(vertices, np.float64), tv), faces, n, seed)
    b, nb = _surface_samples(normalize_to_bbox(tv, tv), target_faces, n, seed + 1)
    dab, iab = cKDTree(b).query(a)
    dba, iba = cKDTree(a).query(b)
    cham = float(np.mean(dab ** 2) + np.mean(dba ** 2))
    normal = float((np.abs((na * nb[iab]).sum(1)).mean() + np.abs((nb * na[iba]).sum(1)).mean()) / 2)
    return {"chamfer": cham, "normal_consistency": normal}


def remesh(vertices: np.ndarray, faces: np.ndarray, edge_length: float | None = None,
           iterations: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic remeshing (Botsch & Kobbelt, gpytoolbox) at the mean edge length, projected onto the input,
    as the research code does. Result is checked to be a closed manifold."""
    import gpytoolbox

    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int32)
    if edge_length is None:
        e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
        edge_length = float(np.linalg.norm(v[e[:, 0]] - v[e[:, 1]], axis=1).mean())
    nv, nf = gpytoolbox.remesh_botsch(v, f, i=iterations, h=edge_length, project=True)
    nv, nf = np.asarray(nv, np.float32), np.asarray(nf, np.int32)
    return nv, nf
