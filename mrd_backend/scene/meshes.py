"""Triangle meshes as plain numpy (float32 vertices (V,3), int32 faces (F,3)): loading, checks, metrics, remeshing."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..errors import MRDError
from .images import from_srgb


# File types whose convention is Y up; Blender's importers turn them to Z up ((x, y, z) -> (x, -z, y)).
Y_UP_SUFFIXES = (".obj", ".gltf", ".glb")
UP_CHOICES = ("auto", "y", "z")


@dataclass
class MeshFile:
    """What a mesh file holds that a scene can use. `vertices`/`faces` keep the file's UV seams (split vertices);
    `base_color`: an (H, W, 3) linear texture, an RGB triple, or None (no material in the file)."""
    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray | None = None
    base_color: object = None
    notes: list = field(default_factory=list)


def y_up(path: str | Path, up: str = "auto") -> bool:
    if up not in UP_CHOICES:
        raise MRDError(f"unknown up axis {up!r}: use {', '.join(UP_CHOICES)}")
    return up == "y" or (up == "auto" and Path(path).suffix.lower() in Y_UP_SUFFIXES)


def _read(path: str | Path, up: str):
    """The file as one trimesh (unprocessed), NaN-checked and turned to Z up."""
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise MRDError(f"mesh file {path} does not exist: give the path of a .ply, .obj or .glb file")
    try:
        mesh = trimesh.load(path, force="mesh", process=False)
    except Exception as exc:
        raise MRDError(f"cannot read mesh {path} ({type(exc).__name__}: {exc}): export it again as PLY or "
                       "OBJ") from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise MRDError(f"mesh {path} has no triangles: give a file that contains a surface")
    # Before any processing: trimesh's clean-up would drop the faces that touch NaN vertices without a word.
    bad = ~np.isfinite(np.asarray(mesh.vertices)).all(1)
    if bad.any():
        raise MRDError(f"mesh {path} has {int(bad.sum())} vertices with NaN or infinite coordinates: fix or "
                       "re-export the mesh")
    if y_up(path, up):
        v = np.asarray(mesh.vertices)
        mesh.vertices = np.stack([v[:, 0], -v[:, 2], v[:, 1]], 1)
    return mesh


def load_mesh(path: str | Path, up: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Vertices and faces of a PLY/OBJ/STL/glTF/... file, triangulated, with vertices at the same place merged
    (also across UV seams: the geometry alone, a closed surface where the file's is). Y-up files (OBJ, glTF) are
    turned to Z up as Blender imports them unless `up` says otherwise."""
    mesh = _read(path, up)
    mesh.merge_vertices(merge_tex=True, merge_norm=True)
    mesh.process()
    return np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces, np.int32)


def read_mesh_file(path: str | Path, up: str = "auto") -> MeshFile:
    """The mesh with its UVs and its base colour (texture or colour) where trimesh reads them."""
    mesh = _read(path, up)
    mesh.process()  # merges duplicates but keeps vertices whose UVs differ (the seams)
    out = MeshFile(np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces, np.int32))
    visual = mesh.visual
    uv = getattr(visual, "uv", None)
    if uv is not None and len(uv) == len(mesh.vertices):
        out.uvs = np.asarray(uv, np.float32)
    material = getattr(visual, "material", None)
    image, factor = _base_color_of(material)
    if image is not None and out.uvs is not None:
        out.base_color = _linear(image) * (factor if factor is not None else 1.0)
    elif image is not None:
        out.notes.append(f"{Path(path).name} has a texture but no UVs: the texture is not used")
    elif factor is not None:
        out.base_color = tuple(float(x) for x in factor)
    if getattr(visual, "kind", None) in ("vertex", "face"):
        out.notes.append(f"{Path(path).name} has vertex or face colours: they are not used (grey, or bake them "
                         "into a texture)")
    return out


def _base_color_of(material):
    """(texture image or None, linear RGB factor or None) of a trimesh material (OBJ's or glTF's)."""
    if material is None:
        return None, None
    if hasattr(material, "baseColorTexture") or hasattr(material, "baseColorFactor"):  # glTF (PBR)
        factor = getattr(material, "baseColorFactor", None)
        if factor is not None:
            factor = np.asarray(factor, np.float64)[:3]
            factor = factor / 255.0 if factor.max() > 1.0 or np.issubdtype(np.asarray(
                material.baseColorFactor).dtype, np.integer) else factor
        return getattr(material, "baseColorTexture", None), factor
    return getattr(material, "image", None), None  # OBJ: map_Kd (Kd alone is trimesh's default too often)


def _linear(image) -> np.ndarray:
    """A colour texture (sRGB, as Blender reads one) as linear float RGB (H, W, 3)."""
    return from_srgb(np.asarray(image.convert("RGB"), np.float32) / 255.0).astype(np.float32)


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
