"""Similarity of two feature vectors or feature maps (one view's target and result features), several ways.

Every measure is 1 for identical inputs and lower for different ones:
- `cosine`: cosine on the unit hypersphere; for per-patch features (N, C) (dino, clip) the mean over patches of the
  per-patch cosine, as the research code's DINO/CLIP similarity;
- `l2`: 1 - ||a - b|| / (||a|| + ||b||), in [0, 1] by the triangle inequality (`l2_distance` holds ||a - b||);
- `pearson`: Pearson correlation of the flattened features;
- `spearman`: Spearman rank correlation of the flattened features (scipy).
Features may be numpy arrays, torch tensors or Dr.Jit tensors (lists of them: concatenated, flattened); leading
singleton (batch) axes are dropped.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import MRDError
from ..protocol import finite as _clean

KINDS = ("cosine", "l2", "pearson", "spearman")
EPS = 1e-12


def to_numpy(x) -> np.ndarray:
    """numpy float64 view of a numpy array, torch tensor, Dr.Jit tensor/array or nested list."""
    if x is None:
        raise MRDError("no features to compare: the objective returned none for this image")
    if isinstance(x, (list, tuple)) and x and not np.isscalar(x[0]):  # multi-stage features (lpips): concatenated
        return np.concatenate([to_numpy(part).ravel() for part in x])
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch
        x = x.detach().cpu().numpy()
    elif type(x).__module__.startswith("drjit"):
        import drjit as dr
        x = np.asarray(dr.detach(x))
    arr = np.asarray(x, dtype=np.float64)
    while arr.ndim > 1 and arr.shape[0] == 1:
        arr = arr[0]
    return arr


def _match(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if a.shape != b.shape:
        if a.size != b.size:
            raise MRDError(f"features of different sizes cannot be compared ({a.shape} vs {b.shape}): "
                           "compute both with the same model at the same image size")
        # one side flattened (last_features()) and the other not: use the structured shape
        a, b = (a.reshape(b.shape), b) if b.ndim > a.ndim else (a, b.reshape(a.shape))
    return a, b


def cosine(a, b) -> float:
    """Cosine similarity; per-patch mean for (N, C) features."""
    a, b = _match(to_numpy(a), to_numpy(b))
    if a.ndim == 2:
        na = np.linalg.norm(a, axis=1)
        nb = np.linalg.norm(b, axis=1)
        return float(np.mean((a * b).sum(1) / np.maximum(na * nb, EPS)))
    a, b = a.ravel(), b.ravel()
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), EPS))


def l2(a, b) -> tuple[float, float]:
    """(similarity 1 - ||a - b|| / (||a|| + ||b||), distance ||a - b||) of the flattened features."""
    a, b = _match(to_numpy(a), to_numpy(b))
    a, b = a.ravel(), b.ravel()
    dist = float(np.linalg.norm(a - b))
    denom = float(np.linalg.norm(a) + np.linalg.norm(b))
    return (1.0 if denom < EPS else 1.0 - dist / denom), dist


def pearson(a, b) -> float | None:
    a, b = _match(to_numpy(a), to_numpy(b))
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    da, db = np.linalg.norm(a), np.linalg.norm(b)
    if da < EPS or db < EPS:  # constant features: correlation undefined unless both are the same constant
        return 1.0 if (da < EPS and db < EPS) else None
    return float(np.clip(a @ b / (da * db), -1.0, 1.0))


def spearman(a, b) -> float | None:
    from scipy.stats import rankdata
    a, b = _match(to_numpy(a), to_numpy(b))
    return pearson(rankdata(a.ravel()), rankdata(b.ravel()))


def similarity(features_a, features_b, kind: str | tuple | list = "all") -> dict:
    """{"cosine": x, "l2": x, "l2_distance": x, "pearson": x, "spearman": x} (the requested kinds; None where a
    measure is undefined, e.g. Pearson of constant features)."""
    kinds = KINDS if kind == "all" else ((kind,) if isinstance(kind, str) else tuple(kind))
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise MRDError(f"unknown similarity {unknown[0]!r}: use one of {', '.join(KINDS)} or all")
    a, b = _match(to_numpy(features_a), to_numpy(features_b))
    out = {}
    for k in kinds:
        if k == "cosine":
            out["cosine"] = _clean(cosine(a, b))
        elif k == "l2":
            s, d = l2(a, b)
            out["l2"], out["l2_distance"] = _clean(s), _clean(d)
        elif k == "pearson":
            out["pearson"] = pearson(a, b)
        elif k == "spearman":
            out["spearman"] = spearman(a, b)
    return out


def per_view(features_a: list, features_b: list, kind="all") -> dict:
    """Per-view similarities of two equally long lists of features and their means:
    {"per_view": {measure: [...]}, "mean": {measure: x}}."""
    if len(features_a) != len(features_b):
        raise MRDError(f"cannot pair {len(features_a)} views with {len(features_b)}: give one image per view for both")
    rows = [similarity(a, b, kind) for a, b in zip(features_a, features_b)]
    keys = list(rows[0]) if rows else []
    pv = {k: [r[k] for r in rows] for k in keys}
    return {"per_view": pv, "mean": {k: mean_or_none(v) for k, v in pv.items()}}


def mean_or_none(values) -> float | None:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.mean(vals)) if vals else None
