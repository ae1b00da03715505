"""Representational similarity analysis across views, as the research code's shape loop computes it (src/shape.py,
`compute_rdm` and `compute_rsa_similarity`; its later version also against the held-out views' RDM).

An RDM is the views x views matrix of correlation distances (1 - Pearson r, scipy `pdist(metric="correlation")`)
between the flattened features of each view. Two RDMs are compared over their strict upper triangles with Kendall's
tau-b (the research code's statistic) and Spearman's rho, each with its p-value.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import MRDError
from ..outputs.figures import save_figure
from ..protocol import finite as _clean
from .similarity import to_numpy


def rdm(features: list) -> np.ndarray:
    """(n_views, n_views) correlation-distance matrix of per-view features (any shapes, flattened)."""
    from scipy.spatial.distance import pdist, squareform
    if len(features) < 2:
        raise MRDError(f"an RDM needs at least 2 views, got {len(features)}: use more views")
    x = np.stack([to_numpy(f).ravel() for f in features])
    with np.errstate(invalid="ignore", divide="ignore"):
        d = squareform(pdist(x, metric="correlation"))
    return np.nan_to_num(d, nan=1.0)  # a constant feature vector has no correlation: distance 1 (uncorrelated)


def upper(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m)
    return m[np.triu_indices(m.shape[0], k=1)]


def compare_rdms(a: np.ndarray, b: np.ndarray) -> dict:
    """Kendall tau-b and Spearman rho (with p-values) of the strict upper triangles of two RDMs."""
    from scipy.stats import kendalltau, spearmanr
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise MRDError(f"RDMs of {a.shape[0]} and {b.shape[0]} views cannot be compared: use the same views")
    ua, ub = upper(a), upper(b)
    out = {"n_views": int(a.shape[0]), "n_pairs": int(len(ua)), "kendall_tau_b": None, "kendall_p": None,
           "spearman_rho": None, "spearman_p": None}
    if len(ua) < 3 or np.ptp(ua) == 0 or np.ptp(ub) == 0:
        out["note"] = "too few views or constant dissimilarities: correlation undefined"
        return out
    kt = kendalltau(ua, ub, variant="b")
    sr = spearmanr(ua, ub)
    out.update(kendall_tau_b=_clean(kt.statistic), kendall_p=_clean(kt.pvalue),
               spearman_rho=_clean(sr.statistic), spearman_p=_clean(sr.pvalue))
    return out


def rsa(features_a: list, features_b: list) -> dict:
    """RDMs of two feature sets over the same views and their comparison (RDMs included as nested lists)."""
    ra, rb = rdm(features_a), rdm(features_b)
    out = compare_rdms(ra, rb)
    out["rdm_a"], out["rdm_b"] = ra.tolist(), rb.tolist()
    return out


# -- plots ------------------------------------------------------------------------------------------------------------
def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path) -> Path:
    return save_figure(fig, path, dpi=90)


def plot_rdms(rdms: dict, path: Path) -> Path:
    """One panel per named RDM (same colour scale), e.g. {"target": m, "result": m, "control": m}."""
    plt = _plt()
    names = list(rdms)
    fig, axes = plt.subplots(1, len(names), figsize=(3.0 * len(names) + 0.8, 3.0), squeeze=False, layout="constrained")
    vmax = max(float(np.max(m)) for m in rdms.values()) or 1.0
    im = None
    for ax, name in zip(axes[0], names):
        im = ax.imshow(np.asarray(rdms[name]), cmap="plasma", vmin=0.0, vmax=vmax)
        ax.set_title(f"RDM {name}", fontsize=10)
        ax.set_xlabel("view")
        if ax is axes[0][0]:
            ax.set_ylabel("view")
    fig.colorbar(im, ax=list(axes[0]), shrink=0.8, label="1 - Pearson r")
    return _save(fig, path)


def plot_scatter(a: np.ndarray, b: np.ndarray, path: Path, stats: dict | None = None,
                 labels: tuple = ("target", "result")) -> Path:
    """Scatter of the upper-triangle dissimilarities of two RDMs, titled with Kendall's tau-b."""
    plt = _plt()
    stats = stats or compare_rdms(a, b)
    fig, ax = plt.subplots(figsize=(3.6, 3.4))
    ax.scatter(upper(a), upper(b), s=10, alpha=0.7, color="C0")
    lim = [0, max(float(upper(a).max(initial=0)), float(upper(b).max(initial=0)), 1e-6) * 1.05]
    ax.plot(lim, lim, color="0.7", lw=0.8, zorder=0)
    tau = stats.get("kendall_tau_b")
    title = "RSA (Kendall tau-b)" if tau is None else f"RSA: tau-b = {tau:.3f}, p = {stats['kendall_p']:.2g}"
    ax.set(title=title, xlabel=f"dissimilarity ({labels[0]})", ylabel=f"dissimilarity ({labels[1]})")
    ax.title.set_fontsize(10)
    fig.tight_layout()
    return _save(fig, path)
