"""Optional geometric regularizers (Laplacian, edge length, triangle area, ARAP), differentiable in Dr.Jit.

The research code evaluated these in Python loops over scalars, so they carried no gradient. Here each term is a
vectorized expression of `dr.gather`s (and one `dr.scatter_reduce`) over index arrays built once per topology, so
`dr.backward` flows into the vertex buffer. Every term compares the current mesh with its rest mesh and is zero there.

Vertex positions may be given either as the flat `mi.Float` (x0, y0, z0, x1, ...) that Mitsuba stores in
`shape.vertex_positions` (what `params["<mesh>.vertex_positions"]` holds), or as an `mi.Point3f` of width V; both
are read with the same `dr.gather(mi.Point3f, ...)`, which takes three consecutive entries from a flat Float.
Remeshing changes the topology, so objects are rebuilt from the new rest mesh (`Regularizers.rebuild`).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ..errors import MRDError
from ..render.variant import mitsuba

NAMES = ("laplacian", "edge", "area", "arap")

# Inside the square roots of lengths and areas: keeps the gradient finite when an edge or triangle collapses.
_SQRT_EPS = 1e-12
# The research ARAP term normalizes rest edge directions with this epsilon.
_ARAP_EPS = 1e-8


def _check(vertices, faces) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
        raise MRDError(f"regularizer rest vertices must have shape (V, 3), got {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise MRDError(f"regularizer faces must have shape (F, 3), got {f.shape}")
    if f.min() < 0 or f.max() >= len(v):
        raise MRDError(f"regularizer faces index outside 0..{len(v) - 1}: pass the faces of the same mesh")
    return v, f


def unique_edges(faces: np.ndarray) -> np.ndarray:
    """Undirected edges of a triangle mesh as a sorted (E, 2) int array with i < j."""
    f = np.asarray(faces, np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    return np.unique(np.sort(e, axis=1), axis=0)


def _uint(a: np.ndarray):
    return mitsuba().UInt32(np.ascontiguousarray(a, np.uint32))


def _point(a: np.ndarray):
    a = np.asarray(a, np.float32)
    return mitsuba().Point3f(a[:, 0], a[:, 1], a[:, 2])


def _gather(vertex_positions, index):
    """Points at `index` from a flat Float (x0,y0,z0,...) or a Point3f; differentiable."""
    import drjit as dr

    mi = mitsuba()
    return dr.gather(mi.Point3f, vertex_positions, index)


def _safe_norm(v):
    import drjit as dr

    return dr.sqrt(dr.squared_norm(v) + _SQRT_EPS)


class Regularizer:
    """Base: built from a rest mesh (numpy), evaluated on Dr.Jit vertex positions to a width-1 mi.Float."""

    name = ""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray):
        v, f = _check(vertices, faces)
        self.num_vertices = len(v)
        self._build(v, f)

    def _build(self, v: np.ndarray, f: np.ndarray) -> None:
        raise NotImplementedError

    def __call__(self, vertex_positions):
        raise NotImplementedError


class LaplacianRegularizer(Regularizer):
    """Uniform Laplacian: mean over vertices of ||L v - L v_rest||^2, with (L v)_i = v_i - mean of neighbours."""

    name = "laplacian"

    def _build(self, v, f):
        edges = unique_edges(f)
        src = np.concatenate([edges[:, 0], edges[:, 1]])
        dst = np.concatenate([edges[:, 1], edges[:, 0]])
        order = np.argsort(src, kind="stable")
        src, dst = src[order], dst[order]
        deg = np.bincount(src, minlength=len(v))
        # Padded neighbour lists (V, K): only gathers, no scatter in the forward pass, whose AD was not reliable.
        k = int(deg.max()) if len(deg) else 0
        slot = np.arange(len(src)) - np.repeat(np.cumsum(deg) - deg, deg)
        nbr = np.tile(np.arange(len(v))[:, None], (1, max(k, 1)))
        w = np.zeros((len(v), max(k, 1)))
        nbr[src, slot] = dst
        # An isolated vertex has no neighbours: weight 0 makes its Laplacian coordinate the vertex itself.
        w[src, slot] = 1.0 / deg[src]
        self.nbr = [_uint(nbr[:, j]) for j in range(nbr.shape[1])]
        self.w = [mitsuba().Float(w[:, j].astype(np.float32)) for j in range(w.shape[1])]
        self.all = _uint(np.arange(len(v)))
        self.rest = _point(v)

    def __call__(self, vertex_positions):
        import drjit as dr

        # L is linear, so L v - L v_rest = L (v - v_rest): compare displacements, not absolute positions.
        d = _gather(vertex_positions, self.all) - self.rest
        lap = d
        for idx, w in zip(self.nbr, self.w):
            lap = lap - w * (_gather(vertex_positions, idx) - dr.gather(type(self.rest), self.rest, idx))
        return dr.mean(dr.squared_norm(lap))


class EdgeLengthRegularizer(Regularizer):
    """Mean over unique edges of (|e| - |e_rest|)^2."""

    name = "edge"

    def _build(self, v, f):
        edges = unique_edges(f)
        self.i, self.j = _uint(edges[:, 0]), _uint(edges[:, 1])
        rest = np.sqrt(((v[edges[:, 1]] - v[edges[:, 0]]) ** 2).sum(1) + _SQRT_EPS)
        self.rest_length = mitsuba().Float(rest.astype(np.float32))

    def __call__(self, vertex_positions):
        import drjit as dr

        e = _gather(vertex_positions, self.j) - _gather(vertex_positions, self.i)
        return dr.mean(dr.square(_safe_norm(e) - self.rest_length))


class AreaRegularizer(Regularizer):
    """Mean over faces of (A - A_rest)^2."""

    name = "area"

    def _build(self, v, f):
        self.f0, self.f1, self.f2 = _uint(f[:, 0]), _uint(f[:, 1]), _uint(f[:, 2])
        cross = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
        rest = 0.5 * np.sqrt((cross ** 2).sum(1) + _SQRT_EPS)
        self.rest_area = mitsuba().Float(rest.astype(np.float32))

    def __call__(self, vertex_positions):
        import drjit as dr

        p0 = _gather(vertex_positions, self.f0)
        area = 0.5 * _safe_norm(dr.cross(_gather(vertex_positions, self.f1) - p0,
                                          _gather(vertex_positions, self.f2) - p0))
        return dr.mean(dr.square(area - self.rest_area))


class ArapRegularizer(Regularizer):
    """Research ARAP: mean over edges of ||e - (e . d0) d0||^2, d0 the unit rest direction of the edge."""

    name = "arap"

    def _build(self, v, f):
        edges = unique_edges(f)
        self.i, self.j = _uint(edges[:, 0]), _uint(edges[:, 1])
        e0 = v[edges[:, 1]] - v[edges[:, 0]]
        self.rest_dir = _point(e0 / (np.linalg.norm(e0, axis=1, keepdims=True) + _ARAP_EPS))

    def __call__(self, vertex_positions):
        import drjit as dr

        e = _gather(vertex_positions, self.j) - _gather(vertex_positions, self.i)
        # Only the component across the rest direction is penalized: stretching along the edge is free.
        perp = e - dr.dot(e, self.rest_dir) * self.rest_dir
        return dr.mean(dr.squared_norm(perp))


REGULARIZERS: dict[str, type[Regularizer]] = {
    cls.name: cls for cls in (LaplacianRegularizer, EdgeLengthRegularizer, AreaRegularizer, ArapRegularizer)
}


class Regularizers:
    """The enabled regularizers (weight != 0) of one mesh, with their weights; rebuild after every remesh."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, weights: Mapping[str, float] | None = None):
        weights = dict(weights or {})
        unknown = sorted(set(weights) - set(NAMES))
        if unknown:
            raise MRDError(f"unknown regularizer(s) {unknown}: use {list(NAMES)}")
        for name, w in weights.items():
            if not np.isfinite(float(w)) or float(w) < 0:
                raise MRDError(f"regularizer weight {name}={w} must be a finite number >= 0 (0 turns it off)")
        self.weights = {name: float(w) for name, w in weights.items() if float(w) != 0.0}
        self.terms_by_name: dict[str, Regularizer] = {}
        self.rebuild(vertices, faces)

    def rebuild(self, vertices: np.ndarray, faces: np.ndarray) -> None:
        """Rebuilds every enabled term from a new rest mesh (after a remesh changed the topology)."""
        _check(vertices, faces)
        self.terms_by_name = {name: REGULARIZERS[name](vertices, faces) for name in NAMES if name in self.weights}

    def __bool__(self) -> bool:
        return bool(self.terms_by_name)

    @property
    def names(self) -> list[str]:
        return list(self.terms_by_name)

    def __call__(self, vertex_positions):
        """Weighted sum of the enabled terms as a width-1 mi.Float (0 when none is enabled), differentiable."""
        mi = mitsuba()
        total = mi.Float(0.0)
        for name, term in self.terms_by_name.items():
            total = total + self.weights[name] * term(vertex_positions)
        return total

    def terms(self, vertex_positions) -> dict[str, float]:
        """Unweighted value of each enabled term, as Python floats for logging (detached from the AD graph)."""
        import drjit as dr

        # No AD graph for values that are only printed.
        with dr.suspend_grad():
            return {name: float(term(vertex_positions)[0]) for name, term in self.terms_by_name.items()}
