"""The optimized model's view of a run's images: their features, and per view the model's own similarity to reference
features plus the feature measures (cosine, L2, Pearson, Spearman); optionally on masked images, and averaged over
render seeds for the held-out views."""
from __future__ import annotations

import math

import numpy as np

from ..errors import MRDError
from . import pixels as px
from .panel import no_grad
from .similarity import mean_or_none, similarity


def masked(images, masks):
    """The images with the background zeroed by their per-view masks (the images themselves without masks)."""
    if images is None or masks is None:
        return images
    if len(masks) != len(images):
        raise MRDError(f"{len(masks)} masks for {len(images)} views: give one mask per view")
    out = []
    for im, m in zip(images, masks):
        a = px.as_image(im)
        m = np.asarray(m, bool)
        if m.shape != a.shape[:2]:
            raise MRDError(f"a mask of shape {m.shape} does not fit an image of {a.shape[:2]}: render both at one size")
        out.append(a * m[..., None])
    return out


def to_tensor(im):
    from ..render.variant import mitsuba
    mi = mitsuba()
    if type(im).__module__.startswith("drjit"):
        return im
    return mi.TensorXf(np.ascontiguousarray(np.asarray(im, np.float32)[..., :3]))


class Scorer:
    """The optimized model: prepared features and per-view similarities (model's own measure + feature measures)."""

    def __init__(self, objective):
        self.obj = objective

    def prepare(self, images):
        return [self.obj.prepare(to_tensor(im)) for im in images]

    def score(self, images, ref_feats) -> tuple[dict, list]:
        """({"per_view": {...}, "mean": {...}}, features of `images` (None where the model keeps none))."""
        if len(images) != len(ref_feats):
            raise MRDError(f"cannot pair {len(images)} images with {len(ref_feats)} reference views: one per view")
        model, feats, rows = [], [], []
        for im, rf in zip(images, ref_feats):
            x = to_tensor(im)
            # dual_buffer wants two renders of a view: the same image twice scores it (similarity = 1 - RMSE)
            with no_grad():
                self.obj.loss(x, rf, x) if getattr(self.obj, "renders_per_view", 1) > 1 else self.obj.loss(x, rf)
            s = float(self.obj.similarity(rf))
            model.append(s if math.isfinite(s) else None)
            f = self.obj.last_features()
            feats.append(None if f is None else np.array(f, copy=True))
            rows.append(similarity(f, rf) if f is not None else {})
        pv = {"model": model}
        for k in ("cosine", "l2", "l2_distance", "pearson", "spearman"):
            if all(k in r for r in rows) and rows:
                pv[k] = [r[k] for r in rows]
        return {"per_view": pv, "mean": {k: mean_or_none(v) for k, v in pv.items()}}, feats


def seed_mean(scorer, repeats, masks, ref_feats, known=None) -> list | None:
    """Per held-out view, the model similarity to the reference averaged over the render seeds. `known`:
    {id(images): per-view scores} already computed (not scored again)."""
    if not repeats:
        return None
    rows = []
    for images in repeats:
        if known and id(images) in known:
            scores = known[id(images)]
        else:
            scores = scorer.score(masked(images, masks), ref_feats)[0]["per_view"]["model"]
        rows.append([np.nan if x is None else x for x in scores])
    return [float(x) for x in np.nanmean(np.asarray(rows, np.float64), axis=0)]
