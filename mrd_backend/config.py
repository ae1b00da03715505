"""RunConfig: every setting of a run, JSON-serializable, with the research code's defaults per scene."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .errors import MRDError

RESEARCH_REMESH = [5, 25, 50, 100, 150, 250, 350, 450]
# Research per-scene shape settings (views, Large Steps lambda, remesh epochs); others use the dragon config.
SHAPE_DEFAULTS = {
    "default": {"views": 25, "step_lambda": 15.0, "lr": 0.1, "remesh": RESEARCH_REMESH},
    "suzanne": {"views": 8, "step_lambda": 25.0, "lr": 0.1, "remesh": [100, 200, 300, 400], "class_index": 372},
}


@dataclass
class RunConfig:
    scene: str = "suzanne"
    envmap: str = "studio"
    model: str = "mae"
    mode: str | None = None            # shape | material; None: from the scene
    views: int | None = None           # None: the scene's default (research: 25; suzanne 8)
    width: int | None = None           # None: the model's native size (224 for dino/clip), else 256
    height: int | None = None
    spp: int = 64
    seed: int = 42
    epochs: int = 500
    lr: float | None = None
    step_lambda: float | None = None   # Large Steps lambda (-l)
    remesh: list | None = None         # epochs after which to remesh (0-based)
    remesh_decay: float = 0.8
    reg_laplacian: float = 0.0
    reg_edge: float = 0.0
    reg_area: float = 0.0
    reg_arap: float = 0.0
    patience: int = 50                 # early stopping: epochs without improvement (0 = off)
    min_delta: float | None = None     # research: 1e-5 shape, 1e-4 material
    schedule: str | None = None        # per_view (one step per view, research shape) | per_epoch (accumulate)
    integrator: str = "fast"           # fast | research (direct_projective profiles)
    start: str = "icosphere"           # icosphere | target (the reconstruction control) | a bundled mesh | a path
    start_subdivisions: int = 5        # level-5 icosphere = 10,242 vertices
    weights: str = "pretrained"        # pretrained | untrained | PATH
    weights_dir: str | None = None
    preprocess: str = "correct"        # correct | research
    classify: bool = False
    class_index: int | None = None
    alpha: float = 0.8
    params: list | None = None         # material parameters to optimize
    init: str = "zero"                 # material start: zero | gray | noise
    texture_size: list | None = None   # material bitmaps (width, height)
    masks: bool = False
    forward: bool = False
    log_every: int = 1                 # record a report step every N epochs
    render_every: int | None = None    # write a render grid every N epochs (None: about 50 over the run)
    mesh_every: int = 10               # write a PLY every N epochs
    panel_every: int = 0               # cross-model panel every N epochs (0: pixel runs every logged step; -1 off)
    panel_models: list | None = None   # None: resnet, resnet_sin, vgg, lpips, clip, dino (those that load)
    evidence: bool = True              # held-out controls, pixel measures, RSA and the verdict at the end
    turntable_frames: int = 12         # result and target turntable GIFs (0 = none)
    heldout_views: int = 12            # held-out rig of the equivalence test (at least the optimization views)
    heldout_seeds: int = 2             # render seeds per held-out view (result, ceiling and control each)
    equivalence_margin: float = 0.5    # TOST margin, a fraction of the noise distance 1 - ceiling (docs/evidence.md)
    replicates: int = 1                # runs of this configuration with other seeds and start perturbations
    out: str | None = None
    extras: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise MRDError(f"unknown config keys {', '.join(unknown)}: valid keys are {', '.join(sorted(known))}")
        return cls(**d)

    @classmethod
    def from_file(cls, path: str | Path) -> "RunConfig":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise MRDError(f"config file {path} does not exist") from None
        except json.JSONDecodeError as exc:
            raise MRDError(f"config file {path} is not valid JSON ({exc})") from None

    def to_dict(self) -> dict:
        return asdict(self)

    def resolved(self, is_material: bool, native_size: int | None) -> "RunConfig":
        """A copy with every None filled from the scene's and model's defaults, and values checked."""
        c = RunConfig(**self.to_dict())
        c.mode = c.mode or ("material" if is_material else "shape")
        if c.mode not in ("shape", "material"):
            raise MRDError(f"unknown mode {c.mode!r}: use shape or material")
        if c.mode == "shape":
            d = SHAPE_DEFAULTS.get(c.scene, SHAPE_DEFAULTS["default"])
            c.views = c.views or d["views"]
            c.step_lambda = d["step_lambda"] if c.step_lambda is None else c.step_lambda
            c.lr = d["lr"] if c.lr is None else c.lr
            c.remesh = list(d["remesh"]) if c.remesh is None else [int(x) for x in c.remesh]
            c.min_delta = 1e-5 if c.min_delta is None else c.min_delta
            c.schedule = c.schedule or "per_view"
            if c.class_index is None:
                c.class_index = d.get("class_index")
        else:
            c.views = c.views or 4
            c.lr = 3e-2 if c.lr is None else c.lr
            c.remesh = []
            c.min_delta = 1e-4 if c.min_delta is None else c.min_delta
            c.schedule = c.schedule or "per_epoch"
        size = native_size or 256
        c.width, c.height = c.width or size, c.height or size
        if c.render_every is None:
            c.render_every = max(1, c.epochs // 50)
        for name in ("views", "width", "height", "spp", "epochs"):
            if int(getattr(c, name)) < 1:
                raise MRDError(f"{name} must be at least 1 (got {getattr(c, name)})")
        for name in ("heldout_views", "heldout_seeds", "replicates"):
            if int(getattr(c, name)) < 1:
                raise MRDError(f"{name.replace('_', '-')} must be at least 1 (got {getattr(c, name)})")
        if not 0 < float(c.equivalence_margin) <= 10:
            raise MRDError(f"--margin must be in (0, 10], a fraction of the noise distance 1 - ceiling "
                           f"(got {c.equivalence_margin})")
        if c.lr <= 0:
            raise MRDError(f"learning rate must be positive (got {c.lr})")
        if c.schedule not in ("per_view", "per_epoch"):
            raise MRDError(f"unknown schedule {c.schedule!r}: use per_view or per_epoch")
        if c.integrator not in INTEGRATOR_PROFILES:
            raise MRDError(f"unknown integrator profile {c.integrator!r}: use {' or '.join(INTEGRATOR_PROFILES)}")
        return c


# direct_projective settings by profile. `research` = the research code's (Mitsuba's defaults: octree guiding
# for indirect silhouettes, 512 projective seed samples, every gradient term at the run's spp). `fast` drops
# indirect-silhouette gradients (sppi = 0, so no guiding structure is built in the backward pass) and takes the
# gradient pass at a quarter of the run's spp (its primary-silhouette samples are 90 % of that pass). Chosen by
# measurement (scripts/bench_profiles.py, docs/speed.md): on blob, knot and suzanne with mae, 13-15x faster per
# epoch than `research` on a 2-core CPU at 128 px, and its final chamfer was never worse.
# A value "spp/N" is the run's spp divided by N (at least 1). "spp_grad" is not an integrator property: it is the
# samples per pixel of the gradient (adjoint) pass, which mi.render takes apart from the primal spp (Mitsuba lets
# the render call's spp override the integrator's sppc/sppp, so this is the one lever on the backward's samples).
INTEGRATOR_PROFILES = {
    "research": {"type": "direct_projective"},
    "fast": {"type": "direct_projective", "sppi": 0, "spp_grad": "spp/4"},
}


def _resolved(profile: str, spp: int, profiles: dict | None) -> dict:
    out = {}
    for key, value in (profiles or INTEGRATOR_PROFILES)[profile].items():
        if isinstance(value, str) and value.startswith("spp/"):
            value = max(1, int(spp) // int(value[4:]))
        out[key] = value
    return out


def integrator_settings(profile: str, spp: int, profiles: dict | None = None) -> dict:
    """The Mitsuba integrator dict of an integrator profile for a run at `spp` samples per pixel."""
    return {k: v for k, v in _resolved(profile, spp, profiles).items() if k != "spp_grad"}


def gradient_spp(profile: str, spp: int, profiles: dict | None = None) -> int:
    """Samples per pixel of the profile's gradient pass (the run's spp unless the profile says otherwise)."""
    return int(_resolved(profile, spp, profiles).get("spp_grad", spp))
