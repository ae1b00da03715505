"""The cross-model panel: a metamer for one model checked against all the others.

`Panel(models, weights)` builds every model it can (a model whose pretrained weights are missing, that is not in the
zoo yet, or whose library is absent is skipped, with the reason recorded), prepares each view's target features
once per model, and scores images against them with each model's own similarity (cosine on the unit hypersphere for
networks, the mean per-patch cosine for dino/clip, 1 - distance for lpips/vgg, 1 - error for pixel objectives).
In pixel-objective runs the run loop calls `evaluate` every logged step (the research code's baseline panel) and
every run calls it at the end.
"""
from __future__ import annotations

import contextlib
import inspect
import math

import numpy as np

from ..errors import MRDError
from ..peak_memory import release as release_memory
from .similarity import mean_or_none, per_view as feature_per_view, to_numpy

DEFAULT_MODELS = ("resnet", "resnet_sin", "vgg", "lpips", "clip", "dino", "effnet")


def build_model(name: str, weights: str = "untrained", weights_dir: str | None = None, preprocess: str = "correct",
                seed: int = 0, log=None):
    """build_objective with only the options that model's constructor takes (pixel objectives take none)."""
    from ..objectives import build_objective, objective_class
    cls = objective_class(name)
    want = dict(weights=weights, weights_dir=weights_dir, preprocess=preprocess, seed=seed)
    if log is not None:
        want["log"] = log
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        opts = want
    else:
        opts = {k: v for k, v in want.items() if k in params}
    return build_objective(name, **opts)


def _quiet(*_a, **_k):
    pass


class Panel:
    def __init__(self, models=DEFAULT_MODELS, weights: str = "untrained", weights_dir: str | None = None,
                 preprocess: str = "correct", seed: int = 0, log=print, objectives: dict | None = None):
        """`objectives`: already built objectives to reuse by name (e.g. the run's own)."""
        self.weights = weights
        self.objectives: dict = {}
        self.skipped: dict[str, str] = {}
        self.targets: dict[str, list] = {}
        self.log = log
        for name in dict.fromkeys(models):  # keep order, drop duplicates
            if objectives and name in objectives:
                self.objectives[name] = objectives[name]
                continue
            try:
                self.objectives[name] = build_model(name, weights, weights_dir, preprocess, seed, log=_quiet)
            except MRDError as exc:
                self.skipped[name] = str(exc)
            except Exception as exc:  # a missing optional library, a broken install: skip, say why
                self.skipped[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
        if log:
            say_skipped(self.skipped, log)

    @property
    def models(self) -> list[str]:
        return list(self.objectives)

    def release(self, name: str):
        """Hands model `name` (with its prepared targets) over and forgets it: `(objective, targets)`, so that the
        caller can score with it and drop it before the next one is used (the end of a run holds one at a time)."""
        return self.objectives.pop(name, None), self.targets.pop(name, None)

    def describe(self) -> dict:
        return {"weights": self.weights,
                "models": {n: getattr(o, "weights_used", "none") for n, o in self.objectives.items()},
                "skipped": dict(self.skipped)}

    def set_targets(self, target_images: list) -> None:
        """Prepares every model's features of every target view once (kept until the next call)."""
        mi = _mi()
        self.targets = {name: [obj.prepare(_tensor(mi, im)) for im in target_images]
                        for name, obj in self.objectives.items()}

    def evaluate(self, images: list, detail: bool = False, targets: dict | None = None) -> dict:
        """{model: {"per_view": [...], "mean": x}} of each image against its view's prepared target, under every
        built model. `detail` adds the feature measures (cosine, l2, pearson, spearman) as "measures"."""
        if not self.objectives:  # every model was skipped (e.g. no weights): nothing to evaluate
            return {}
        targets = targets or self.targets
        if not targets:
            raise MRDError("the panel has no targets: call set_targets(target_images) first")
        mi = _mi()
        out = {}
        for name, obj in self.objectives.items():
            feats = targets[name]
            if len(feats) != len(images):
                raise MRDError(f"panel: {len(images)} images for {len(feats)} target views: give one image per view")
            sims, mine = [], []
            for im, tf in zip(images, feats):
                x = _tensor(mi, im)
                with no_grad():  # scoring only: no autograd graph (for ViT-L/14 it held 1.7 GB per forward)
                    obj.loss(x, tf, x) if getattr(obj, "renders_per_view", 1) > 1 else obj.loss(x, tf)
                s = float(obj.similarity(tf))
                sims.append(s if math.isfinite(s) else None)
                if detail:
                    mine.append(obj.last_features())
            entry = {"per_view": sims, "mean": mean_or_none(sims)}
            if detail and all(f is not None for f in mine):
                entry["measures"] = feature_per_view(mine, [to_numpy(t) for t in feats])
            out[name] = entry
        return out

    def evaluate_against(self, images: list, references: list, detail: bool = False) -> dict:
        """Like `evaluate`, against other reference images (e.g. the held-out control), prepared on the fly."""
        mi = _mi()
        refs = {name: [obj.prepare(_tensor(mi, im)) for im in references] for name, obj in self.objectives.items()}
        return self.evaluate(images, detail, targets=refs)


def no_grad():
    """torch's no-grad mode around a network pass that only scores: the network's input from Dr.Jit asks for
    gradients, so without it torch records every activation of the forward for a backward that never comes."""
    try:
        import torch
    except ImportError:
        return contextlib.nullcontext()
    return torch.no_grad()


def say_skipped(skipped: dict, log) -> None:
    """One line for the models without pretrained weights, one per model skipped for another reason."""
    no_weights = [n for n, why in skipped.items() if why.startswith("no pretrained weights")]
    if no_weights:
        log(f"cross-model panel: no pretrained weights for {', '.join(no_weights)}: skipped "
            "(`mrd weights list` shows the files; --weights untrained evaluates untrained networks)")
    for name, why in skipped.items():
        if name not in no_weights:
            log(f"cross-model panel: skipping {name}: {why}")


def _mi():
    from ..render.variant import mitsuba
    return mitsuba()


def _tensor(mi, im):
    if type(im).__module__.startswith("drjit"):
        return im
    return mi.TensorXf(np.ascontiguousarray(np.asarray(im, np.float32)[..., :3]))


def panel_table(result: dict, skipped: dict | None = None) -> list[dict]:
    """Rows for a report table: model, mean similarity, per-view min/max, or the reason it was skipped."""
    rows = []
    for name, e in result.items():
        vals = [v for v in e["per_view"] if v is not None]
        rows.append({"model": name, "mean": e["mean"], "min": min(vals) if vals else None,
                     "max": max(vals) if vals else None, "skipped": None})
    for name, why in (skipped or {}).items():
        rows.append({"model": name, "mean": None, "min": None, "max": None, "skipped": why})
    return rows


def panel_weights(run_weights: str) -> str:
    """The panel's weights for a run's: its own when pretrained or untrained, else (a checkpoint) pretrained."""
    return run_weights if run_weights in ("pretrained", "untrained") else "pretrained"


def end_of_run_panel(ip, weights, model, obj, tgt, res, ctl, ho_r, ho_t, log) -> dict:
    """report["evidence"]["panel"]. Each network is built (or handed over by the loop's panel), scored and released
    before the next, so that the end of a run holds at most one panel network besides the run's own objective."""
    built = ip.panel
    pw = built.weights if built is not None else ip.panel_weights or panel_weights(weights)
    names = list(built.objectives) if built is not None else list(dict.fromkeys(ip.panel_models))
    skipped = dict(built.skipped) if built is not None else {}
    models_out = {}
    for name in names:
        if built is not None:
            o, feats = built.release(name)
            one = Panel([name], pw, log=None, objectives={name: o})
            del o
            if feats is not None:
                one.targets = {name: feats}
        else:
            one = Panel([name], pw, ip.weights_dir, ip.preprocess, log=None,
                        objectives={model: obj} if name == model else None)
            skipped.update(one.skipped)
        if one.objectives:
            if not one.targets:
                one.set_targets(tgt)
            e = one.evaluate(res)[name]
            # the control and held-out columns cost a pass of every panel network per view: only on request
            ce = one.evaluate_against(res, ctl)[name] if ctl is not None and ip.panel_controls else {}
            he = one.evaluate_against(ho_r, ho_t)[name] if ho_t is not None and ip.panel_controls else {}
            models_out[name] = {"per_view": e["per_view"], "mean": e["mean"], "control_mean": ce.get("mean"),
                                "heldout_mean": he.get("mean"),
                                "weights": str(getattr(one.objectives[name], "weights_used", "none"))}
        del one
        release_memory()
    if built is None and log:
        say_skipped(skipped, log)
    return {"weights": pw, "models": models_out, "skipped": skipped}


def step_panel(panel: Panel, images: list) -> dict:
    """What the loop logs per step in pixel-objective runs: {model: mean similarity} (targets set once)."""
    return {name: e["mean"] for name, e in panel.evaluate(images).items()}
