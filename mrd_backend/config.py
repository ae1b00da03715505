"""RunConfig: every setting of a run, JSON-serializable, with the research code's defaults per scene."""
from __future__ import annotations

import json
import math
import numbers
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from . import seeds
from .errors import MRDError

RESEARCH_REMESH = [5, 25, 50, 100, 150, 250, 350, 450]
# Research per-scene shape settings (views, Large Steps lambda, remesh epochs); others use the dragon config.
SHAPE_DEFAULTS = {
    "default": {"views": 25, "step_lambda": 15.0, "lr": 0.1, "remesh": RESEARCH_REMESH},
    "suzanne": {"views": 8, "step_lambda": 25.0, "lr": 0.1, "remesh": [100, 200, 300, 400], "class_index": 372},
}


def read_config(source: str | Path) -> dict:
    """The settings object of a config: `source` is the path of a JSON file, or the JSON text itself when it starts
    with "{" (so `--config '{"evidence": false}'` works too). Every problem is one MRDError line."""
    if isinstance(source, str) and source.lstrip().startswith("{"):
        what = "the --config text"
        try:
            data = json.loads(source)
        except json.JSONDecodeError as exc:
            raise MRDError(f"{what} is not valid JSON ({exc}): write e.g. '{{\"epochs\": 100}}'") from None
    else:
        what = f"config file {source}"
        try:
            data = json.loads(Path(source).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise MRDError(f"{what} does not exist") from None
        except IsADirectoryError:
            raise MRDError(f"{what} is a folder: give the path of a .json file") from None
        except PermissionError:
            raise MRDError(f"{what} cannot be read (permission denied)") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MRDError(f"{what} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise MRDError(f"{what} holds a JSON {type(data).__name__}: it must hold one object of "
                       "settings, e.g. {\"epochs\": 100, \"lr\": 0.05}")
    return data


def parse_remesh(text, what: str = "--remesh") -> list | None:
    """A remesh schedule as people write it ("25, 50", "25 50", or the words of a list of them): the epochs, sorted;
    "auto": None (the scene's research schedule); empty, "none", "never" or "off": [] (never). The one parser of
    the CLI's --remesh and the add-on's Remesh field; `what` names the field in the error."""
    if isinstance(text, (list, tuple)):
        text = " ".join(str(v) for v in text)
    text = (text or "").strip().lower()
    if text == "auto":
        return None
    if text in ("", "none", "never", "off"):
        return []
    try:
        return sorted({int(x) for x in text.replace(",", " ").split()})
    except ValueError:
        raise MRDError(f"{what} takes whole epoch numbers, e.g. \"25, 50\", \"auto\" (the research schedule) or "
                       f"\"none\" ({text!r} is not a list of epochs)") from None


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
    deterministic: bool = False        # one Dr.Jit thread: the same seed gives the same run (determinism.py)
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
    guiding_every: int = 1             # research: build each view's guiding octree every N backward passes
    #                                    (1 = every pass, as Mitsuba does; reused in between, rebuilt after a remesh)
    start: str = "icosphere"           # icosphere | target (the reconstruction control) | a bundled mesh | a path
    start_subdivisions: int = 5        # level-5 icosphere = 10,242 vertices
    up: str = "auto"                   # up axis of mesh files: auto (OBJ, glTF: Y, as Blender imports them) | y | z
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
    panel_every: int = 0               # cross-model panel every N epochs (0: pixel runs at the profile's cadence,
    #                                    panel_cadence below: research every logged step, fast every 10th; -1 off)
    panel_models: list | None = None   # None: resnet, resnet_sin, vgg, lpips, clip, dino, effnet (those that load)
    evidence: bool = True              # held-out controls, pixel measures, RSA and the verdict at the end
    turntable_frames: int = 12         # result and target turntable GIFs (0 = none)
    heldout_views: int = 12            # held-out rig of the equivalence test (at least the optimization views)
    heldout_seeds: int = 2             # render seeds per held-out view (result, ceiling and control each)
    equivalence_margin: float = 0.5    # TOST margin, a fraction of the noise distance 1 - ceiling (docs/evidence.md)
    replicates: int = 1                # runs of this configuration with other seeds and start perturbations
    out: str | None = None
    extras: dict = field(default_factory=dict)
    # --profile research and its parts (RUN_PROFILES below); None/"default" = this project's choices
    profile: str | None = None         # research: every research-code setting at once (RUN_PROFILES["research"])
    camera_distance: float | None = None   # shape views: distance from the look-at point (None: 2.8 bounding radii)
    camera_target: str = "center"     # center (of the target's bounding box) | origin (research)
    env_rotation: float | None = None  # degrees about the vertical of the environment image (None: 0, Blender's)
    target_seeds: str = "per_view"     # per_view: seed + 7919 i | research: seed for every view
    render_seeds: str = "fresh"        # fresh: new noise every step | research: seed * view, fixed over epochs
    start_placement: str = "fit"       # fit: 0.7 bounding radii at the bbox centre | origin: unit radius at origin

    def __post_init__(self):
        check_types(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        if not isinstance(d, dict):
            raise MRDError(f"a run config must be a JSON object of settings ({{\"epochs\": 100, ...}}), "
                           f"not a {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise MRDError(f"unknown config keys {', '.join(unknown)}: valid keys are {', '.join(sorted(known))}")
        return cls(**d)

    @classmethod
    def from_file(cls, path: str | Path) -> "RunConfig":
        """From a JSON file, or from inline JSON text (`--config '{"evidence": false}'`): see read_config."""
        return cls.from_dict(read_config(path))

    def to_dict(self) -> dict:
        return asdict(self)

    def resolved(self, is_material: bool, native_size: int | None) -> "RunConfig":
        """A copy with every None filled from the scene's and model's defaults, and values checked."""
        c = apply_run_profile(RunConfig(**self.to_dict()))
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
        for name, allowed in (("camera_target", ("center", "origin")), ("target_seeds", ("per_view", "research")),
                              ("render_seeds", ("fresh", "research")), ("start_placement", ("fit", "origin"))):
            if getattr(c, name) not in allowed:
                raise MRDError(f"unknown {name} {getattr(c, name)!r}: use {' or '.join(allowed)}")
        if c.camera_distance is not None and not c.camera_distance > 0:
            raise MRDError(f"camera distance must be positive (got {c.camera_distance})")
        return c


# What each setting must be, so that the CLI, the worker and the Python API reject the same bad values with the
# same one line (before any rendering). Kinds: str, int, float, bool, ints, strs, dict; "?" = None allowed.
FIELD_KINDS = {
    "scene": "path", "envmap": "path", "model": "str", "mode": "str?", "views": "int?", "width": "int?",
    "height": "int?", "spp": "int", "seed": "int", "deterministic": "bool", "epochs": "int", "lr": "float?",
    "step_lambda": "float?", "remesh": "ints?", "remesh_decay": "float", "reg_laplacian": "float",
    "reg_edge": "float", "reg_area": "float", "reg_arap": "float", "patience": "int", "min_delta": "float?",
    "schedule": "str?", "integrator": "str", "guiding_every": "int", "start": "path", "start_subdivisions": "int", "up": "str",
    "weights": "path", "weights_dir": "path?", "preprocess": "str", "classify": "bool", "class_index": "int?",
    "alpha": "float",
    "params": "strs?", "init": "path", "texture_size": "ints?", "masks": "bool", "forward": "bool",
    "log_every": "int", "render_every": "int?", "mesh_every": "int", "panel_every": "int", "panel_models": "strs?",
    "evidence": "bool", "turntable_frames": "int", "out": "path?", "extras": "dict",
    "profile": "str?", "camera_distance": "float?", "camera_target": "str", "env_rotation": "float?",
    "target_seeds": "str", "render_seeds": "str", "start_placement": "str",
    "heldout_views": "int", "heldout_seeds": "int", "equivalence_margin": "float", "replicates": "int",
}
# Smallest allowed value of numeric settings (None values are the defaults and pass).
MINIMUM = {"views": 1, "width": 1, "height": 1, "spp": 1, "epochs": 1, "start_subdivisions": 0, "patience": 0,
           "log_every": 1, "guiding_every": 1, "render_every": 1, "mesh_every": 1, "turntable_frames": 0, "min_delta": 0.0,
           "remesh_decay": 0.0, "reg_laplacian": 0.0, "reg_edge": 0.0, "reg_area": 0.0, "reg_arap": 0.0}
CHOICES = {"mode": ("shape", "material"), "schedule": ("per_view", "per_epoch"), "preprocess": ("correct", "research"),
           "up": ("auto", "y", "z"), "camera_target": ("center", "origin"), "target_seeds": ("per_view", "research"),
           "render_seeds": ("fresh", "research"), "start_placement": ("fit", "origin")}


def _bad(name, value, what):
    return MRDError(f"setting {name} must be {what} (got {value!r})")


def _checked(name, kind, v):
    """The value converted to its kind (whole floats to int, paths to str), or MRDError."""
    base = kind.rstrip("?")
    if v is None:
        if kind.endswith("?"):
            return None
        raise _bad(name, v, f"a {base}, not null")
    if base == "bool":
        if isinstance(v, bool):
            return v
        raise _bad(name, v, "true or false")
    if base == "int":
        if isinstance(v, numbers.Integral) and not isinstance(v, bool):
            return int(v)
        if isinstance(v, float) and v.is_integer():
            return int(v)
        raise _bad(name, v, "a whole number")
    if base == "float":
        if isinstance(v, numbers.Real) and not isinstance(v, bool):
            if not math.isfinite(float(v)):
                raise _bad(name, v, "a finite number")
            return float(v)
        raise _bad(name, v, "a number")
    if base in ("str", "path"):
        if isinstance(v, str) or (base == "path" and isinstance(v, os.PathLike)):
            return os.fspath(v)
        raise _bad(name, v, "a path" if base == "path" else "a string")
    if base in ("ints", "strs"):
        if not isinstance(v, (list, tuple)):
            raise _bad(name, v, "a list of whole numbers" if base == "ints" else "a list of names")
        return [_checked(name, base[:-1], x) for x in v]
    if base == "dict":
        if isinstance(v, dict):
            return v
        raise _bad(name, v, "an object (dict)")
    return v


def check_types(cfg) -> None:
    """Types and ranges of every known setting; converts whole floats to int and paths to str in place."""
    for name, kind in FIELD_KINDS.items():
        if hasattr(cfg, name):
            setattr(cfg, name, _checked(name, kind, getattr(cfg, name)))
    for name, lo in MINIMUM.items():
        v = getattr(cfg, name, None)
        if v is not None and v < lo:
            raise MRDError(f"setting {name} must be at least {lo} (got {v})")
    for name, allowed in CHOICES.items():
        v = getattr(cfg, name, None)
        if v is not None and v not in allowed:
            raise MRDError(f"unknown {name} {v!r}: use {' or '.join(allowed)}")
    if cfg.lr is not None and cfg.lr <= 0:
        raise MRDError(f"learning rate must be positive (got {cfg.lr})")
    if cfg.step_lambda is not None and cfg.step_lambda < 0:  # 0: no smoothing (plain Adam on the vertices)
        raise MRDError(f"Large Steps lambda (-l) must be 0 or more (got {cfg.step_lambda}); research: 15, suzanne 25")
    if cfg.camera_distance is not None and cfg.camera_distance <= 0:
        raise MRDError(f"camera distance must be positive (got {cfg.camera_distance})")
    if cfg.remesh and min(cfg.remesh) < 0:
        raise MRDError(f"remesh epochs must be 0 or later (got {cfg.remesh})")
    if cfg.texture_size is not None and (len(cfg.texture_size) != 2 or min(cfg.texture_size) < 1):
        raise MRDError(f"texture_size must be two positive numbers WIDTH HEIGHT (got {cfg.texture_size})")
    if cfg.integrator not in INTEGRATOR_PROFILES:
        raise MRDError(f"unknown integrator profile {cfg.integrator!r}: use {' or '.join(INTEGRATOR_PROFILES)}")


# --profile: a named set of RunConfig values. `research` = everything the research code did in a shape run that this
# project does differently by default (README, "Differences from the research code"). It includes the integrator
# profile `research` (config key `integrator`, flag --integrator: only the direct_projective settings) and the
# preprocessing `research` (--preprocess). A value the user set away from RunConfig's default wins over the profile.
RUN_PROFILES = {
    "research": {
        "integrator": "research",        # direct_projective with Mitsuba's defaults (not `fast`)
        "preprocess": "research",        # the research code's input path (HWC buffer reshaped, its normalizations)
        "camera_distance": 5.0,          # research rig: 5 units ...
        "camera_target": "origin",       # ... looking at the origin (not 2.8 radii around the bbox centre)
        "env_rotation": -90.0,           # environment images lit as Mitsuba's native frame lit them in the research
        "target_seeds": "research",      # every target view rendered with seed 42 (--seed)
        "render_seeds": "research",      # view i rendered with seed * i in every epoch
        "start_placement": "origin",     # the start sphere at the origin at unit radius (research: ico_10k.ply)
    },
}


def apply_run_profile(c: RunConfig) -> RunConfig:
    if c.profile in (None, "", "default"):
        return c
    if c.profile not in RUN_PROFILES:
        raise MRDError(f"unknown profile {c.profile!r}: use {' or '.join(RUN_PROFILES)} (or leave it out)")
    defaults = RunConfig()
    for key, value in RUN_PROFILES[c.profile].items():
        if getattr(c, key) == getattr(defaults, key):
            setattr(c, key, value)
    return c


def target_seed(c: RunConfig, view: int) -> int:
    """Seed of target view `view`: research renders every target with --seed; ours gives each view its own seed in
    the target stream (seeds.py), which no other render of the run uses."""
    return int(c.seed) if c.target_seeds == "research" else seeds.render_seed(seeds.TARGET, view, c.seed)


def view_seed(c: RunConfig, epoch: int, view: int, n_views: int, second: bool = False) -> int:
    """Seed of the render of `view` at `epoch` (`second`: dual_buffer's second render). research: seed * view in
    every epoch (view 1 then shares the target's seed, as in the research code). fresh: new noise every step, in
    the optimization stream (seeds.py), so never a target's seed."""
    if c.render_seeds == "research":
        return int(c.seed) * view + int(second)
    return seeds.render_seed(seeds.OPTIMIZE, 2 * (epoch * n_views + view) + int(second), c.seed)


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


# The cross-model panel of pixel-objective runs (panel_every 0): the research code scored every step, and so does the
# `research` integrator profile; a `fast` step costs about a tenth of a `research` one, and the panel's six networks
# cost as much as one or several `fast` steps, so `fast` scores every PANEL_EVERY_FAST-th logged step, which keeps
# the panel at most 20 % of a default step (docs/speed.md, "The cross-model panel"). The last step is always scored.
PANEL_EVERY_FAST = 10


def panel_cadence(c: RunConfig) -> int:
    """Epochs between two panel scorings during a run (-1: none): panel_every when set, else the profile's cadence,
    in logged steps (a multiple of log_every, so that every scored step is recorded)."""
    if c.panel_every != 0:
        return c.panel_every
    log_every = max(1, int(c.log_every))
    if c.integrator == "research":
        return log_every
    return log_every * max(1, math.ceil(PANEL_EVERY_FAST / log_every))
