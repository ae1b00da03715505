"""The null distribution: how similar, under a model, are OTHER objects to the target (the research code's later
version, src/ecdf.py; docs/evidence.md).

`mrd null SCENE ENVMAP MODEL` renders the target and a set of other objects (the bundled meshes, meshes the user
adds with --mesh, and simple primitives), each under random rotations and scales, scaled to the target's bounding
sphere, with the target's material, under the same environment and from the same cameras. Each object's value is
the model's similarity to the target averaged over the views. The empirical distribution is stored as JSON with
the scene, envmap, model, weights and preprocessing it was built for; loading it for anything else is refused.
A run's similarity is placed on it as a percentile: the percentage of null objects whose similarity is at most the
run's.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..errors import MRDError

NULL_VERSION = 1
PRIMITIVES = ("sphere", "box", "torus", "cylinder", "cone", "capsule")


@dataclass
class NullDistribution:
    scene: str
    envmap: str
    model: str
    weights: str
    preprocess: str = "correct"
    values: list = field(default_factory=list)      # per object: mean similarity to the target over the views
    objects: list = field(default_factory=list)     # per object: mesh, rotation (quaternion xyzw), scale, similarity
    views: int = 0
    width: int = 0
    height: int = 0
    spp: int = 0
    seed: int = 0
    target_resample: float | None = None            # the target re-rendered with another seed: the noise ceiling
    created: str = ""
    version: int = NULL_VERSION

    # -- lookups --------------------------------------------------------------------------------------------------
    def percentile(self, value: float) -> float:
        """Percent of null objects whose similarity is <= value (the empirical CDF at value, times 100)."""
        v = np.asarray(self.values, np.float64)
        if len(v) == 0:
            raise MRDError("the null distribution is empty: build it again with `mrd null` and more objects")
        return float(100.0 * np.mean(v <= value))

    def summary(self) -> dict:
        v = np.asarray(self.values, np.float64)
        return {"n": int(len(v)), "mean": float(v.mean()) if len(v) else None,
                "min": float(v.min()) if len(v) else None, "max": float(v.max()) if len(v) else None,
                "p95": float(np.percentile(v, 95)) if len(v) else None, "target_resample": self.target_resample}

    def check(self, scene: str | None = None, envmap: str | None = None, model: str | None = None,
              weights: str | None = None, preprocess: str | None = None) -> None:
        """Refuses (MRDError) a null built for another scene, envmap, model, weights or preprocessing."""
        for key, want in (("scene", scene), ("envmap", envmap), ("model", model), ("weights", weights),
                          ("preprocess", preprocess)):
            have = getattr(self, key)
            if want is not None and str(want) != str(have):
                raise MRDError(f"the null distribution was built for {key} {have!r}, this run has {want!r}: run "
                               f"`mrd null {self.scene if key != 'scene' else want} "
                               f"{self.envmap if key != 'envmap' else want} {self.model if key != 'model' else want}` "
                               "for this run's settings")

    def warnings(self, views: int | None = None, width: int | None = None) -> list[str]:
        out = []
        if views is not None and self.views and views != self.views:
            out.append(f"null built with {self.views} views, the run has {views}")
        if width is not None and self.width and width != self.width:
            out.append(f"null built at {self.width} px, the run renders at {width} px")
        return out

    # -- storage --------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"kind": "mrd-null-distribution", **dataclasses.asdict(self)}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=1)
        return atomic_write(path, lambda tmp: tmp.write_text(text))


def load_null(path: str | Path, scene: str | None = None, envmap: str | None = None, model: str | None = None,
              weights: str | None = None, preprocess: str | None = None) -> NullDistribution:
    """Reads a null distribution; with scene/envmap/model/weights given, refuses one built for other settings."""
    path = Path(path)
    if not path.is_file():
        raise MRDError(f"null distribution {path} does not exist: build it with `mrd null SCENE ENVMAP MODEL`")
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise MRDError(f"cannot read null distribution {path} ({type(exc).__name__}): "
                       "build it again with `mrd null`") from None
    if not isinstance(d, dict) or d.get("kind") != "mrd-null-distribution":
        raise MRDError(f"{path} is not a null distribution written by `mrd null`")
    if d.get("version") != NULL_VERSION:
        raise MRDError(f"null distribution {path} has version {d.get('version')!r}, this mrd reads version "
                       f"{NULL_VERSION}: build it again with `mrd null`")
    names = {f.name for f in dataclasses.fields(NullDistribution)}
    dist = NullDistribution(**{k: v for k, v in d.items() if k in names})
    dist.check(scene, envmap, model, weights, preprocess)
    return dist


def _slug(s: str) -> str:
    s = str(s)
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(s).stem if ("/" in s or os.sep in s) else s)
    return clean if clean == s else f"{clean}-{hashlib.sha1(s.encode()).hexdigest()[:8]}"


def null_dir() -> Path:
    return Path(os.environ.get("MRD_NULL_DIR") or Path.home() / ".cache" / "mrd" / "null").expanduser()


def default_null_path(scene: str, envmap: str, model: str, weights: str, preprocess: str = "correct") -> Path:
    """Where `mrd null` stores a distribution by default: $MRD_NULL_DIR or ~/.cache/mrd/null/, one file per
    scene, envmap, model, weights and preprocessing mode."""
    return null_dir() / f"{_slug(scene)}-{_slug(envmap)}-{_slug(model)}-{_slug(weights)}-{_slug(preprocess)}.json"


def find_null(scene: str, envmap: str, model: str, weights: str, preprocess: str = "correct"):
    """The stored null for these settings (preprocessing mode included), or None when none was built. A file of
    the older name (without the mode) is used only when it was built for this mode. A file for other settings
    under this name raises MRDError."""
    p = default_null_path(scene, envmap, model, weights, preprocess)
    if p.is_file():
        return load_null(p, scene, envmap, model, weights, preprocess)
    legacy = null_dir() / f"{_slug(scene)}-{_slug(envmap)}-{_slug(model)}-{_slug(weights)}.json"
    if legacy.is_file():
        dist = load_null(legacy, scene, envmap, model, weights)
        return dist if str(dist.preprocess) == str(preprocess) else None
    return None


# -- building --------------------------------------------------------------------------------------------------------
def primitive(name: str) -> tuple[np.ndarray, np.ndarray]:
    import trimesh
    make = {"sphere": lambda: trimesh.creation.icosphere(3), "box": lambda: trimesh.creation.box((1.0, 0.7, 0.5)),
            "torus": lambda: trimesh.creation.torus(1.0, 0.35), "cylinder": lambda: trimesh.creation.cylinder(0.5, 1.5),
            "cone": lambda: trimesh.creation.cone(0.6, 1.4), "capsule": lambda: trimesh.creation.capsule(1.0, 0.4)}
    if name not in make:
        raise MRDError(f"unknown primitive {name!r}: use one of {', '.join(PRIMITIVES)}")
    m = make[name]()
    return np.asarray(m.vertices, np.float32), np.asarray(m.faces, np.int32)


def default_others(scene: str, extra_meshes: list | None = None, primitives=PRIMITIVES) -> list:
    """(name, vertices, faces) of the objects a null compares with: the bundled target meshes other than the
    scene's own, the user's meshes (paths) and the primitives."""
    from ..scene.meshes import load_mesh
    out = []
    try:
        from ..scenes import load_target_mesh, target_mesh_names
        for name in target_mesh_names():
            if name != scene:
                out.append((name, *load_target_mesh(name)))
    except ImportError:
        pass
    for p in extra_meshes or []:
        out.append((Path(p).stem, *load_mesh(p)))
    for name in primitives:
        out.append((name, *primitive(name)))
    return out


def _fit_to(vertices, center, radius, rotation, scale) -> np.ndarray:
    from ..scene.meshes import bounding_sphere
    c, r = bounding_sphere(vertices)
    v = (np.asarray(vertices, np.float64) - c) / max(r, 1e-12)
    return (v @ rotation.T * radius * scale + center).astype(np.float32)


def _pinned(spec):
    from ..scene.cameras import CameraRig
    rig = spec.cameras
    return CameraRig(rig.n_views, rig.fov, rig.width, rig.height, rig.distance, rig.center,
                     [np.asarray(m) for m in spec.camera_matrices()], rig.offset)


def _view_similarities(objective, target_feats, images) -> list[float]:
    from ..render.variant import mitsuba
    mi = mitsuba()
    out = []
    for tf, im in zip(target_feats, images):
        x = mi.TensorXf(np.ascontiguousarray(im, np.float32))
        objective.loss(x, tf, x) if getattr(objective, "renders_per_view", 1) > 1 else objective.loss(x, tf)
        out.append(float(objective.similarity(tf)))
    return out


def build_null(spec, objective, others: list, per_mesh: int = 4, seed: int = 0, spp: int = 64,
               scale_range: tuple = (0.75, 1.25), scene: str | None = None, envmap: str | None = None,
               model: str | None = None, weights: str | None = None, preprocess: str | None = None,
               log=print) -> NullDistribution:
    """Renders the target and `per_mesh` random rotations/scales of each (name, V, F) in `others` with the target's
    material, lighting and cameras; returns their similarities to the target under `objective`."""
    from scipy.spatial.transform import Rotation

    from ..render.tonemap import to_ldr
    from ..render.variant import mitsuba
    mi = mitsuba()
    if not others:
        raise MRDError("no other objects to build a null distribution from: add meshes with --mesh")
    if per_mesh < 1:
        raise MRDError(f"--objects must be at least 1, got {per_mesh}")
    rng = np.random.default_rng(seed)
    pinned = _pinned(spec)
    base = dataclasses.replace(spec, cameras=pinned)
    t0 = time.time()
    targets = [to_ldr(im) for im in base.render(spp=spp, seed=seed)]
    target_feats = [objective.prepare(mi.TensorXf(np.ascontiguousarray(im, np.float32))) for im in targets]
    again = [to_ldr(im) for im in base.render(spp=spp, seed=seed + 100_003)]
    resample = float(np.mean(_view_similarities(objective, target_feats, again)))
    center, radius = spec.bounds()
    values, objects = [], []
    for name, v, f in others:
        for k in range(per_mesh):
            rot = Rotation.random(random_state=rng)
            scale = float(rng.uniform(*scale_range))
            verts = _fit_to(v, center, radius, rot.as_matrix(), scale)
            other = dataclasses.replace(base, vertices=verts, faces=np.asarray(f, np.int32), uvs=None, normals=None,
                                        name=f"null-{name}-{k}")
            imgs = [to_ldr(im) for im in other.render(spp=spp, seed=seed + 1 + len(objects))]
            sims = _view_similarities(objective, target_feats, imgs)
            value = float(np.mean(sims))
            values.append(value)
            objects.append({"mesh": name, "draw": k, "rotation_xyzw": [float(x) for x in rot.as_quat()],
                            "scale": scale, "similarity": value, "per_view": sims})
        log(f"null: {name}: {per_mesh} draws, last similarity {values[-1]:.4f} ({time.time() - t0:.0f} s)")
    return NullDistribution(
        scene=scene or spec.name, envmap=envmap or spec.environment.name, model=model or objective.name,
        weights=weights or getattr(objective, "weights_used", "none"),
        preprocess=preprocess or getattr(objective, "preprocess", "correct"), values=values, objects=objects,
        views=len(targets), width=pinned.width, height=pinned.height, spp=spp, seed=seed, target_resample=resample,
        created=time.strftime("%Y-%m-%dT%H:%M:%S"))


# -- plot ------------------------------------------------------------------------------------------------------------
def plot_null(dist: NullDistribution, path: str | Path, mark: float | None = None,
              mark_label: str = "this run") -> Path:
    """Histogram and empirical CDF of the null similarities; the run's similarity (and the target's noise
    ceiling) marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    v = np.sort(np.asarray(dist.values, np.float64))
    fig, ax = plt.subplots(figsize=(5.2, 3.2), layout="constrained")
    if len(v):
        ax.hist(v, bins=max(5, min(30, len(v) // 2)), color="0.75", edgecolor="0.5",
                label=f"other objects (n={len(v)})")
        ax2 = ax.twinx()
        ax2.step(v, np.arange(1, len(v) + 1) / len(v), where="post", color="C0", lw=1.2)
        ax2.set_ylim(0, 1.02)
        ax2.set_ylabel("empirical CDF", color="C0")
    if dist.target_resample is not None:
        ax.axvline(dist.target_resample, color="C2", ls="--", lw=1.2, label="target re-rendered")
    if mark is not None and math.isfinite(mark):
        pct = dist.percentile(mark) if len(v) else float("nan")
        ax.axvline(mark, color="C3", lw=2, label=f"{mark_label}: {mark:.4f} ({pct:.0f}th pct.)")
    ax.set(xlabel=f"similarity to the target ({dist.model}, {dist.weights})", ylabel="objects",
           title=f"null distribution: {dist.scene} / {dist.envmap}")
    ax.title.set_fontsize(10)
    ax.legend(fontsize=7, loc="upper left")
    from ..outputs.figures import save_figure
    return save_figure(fig, path)
