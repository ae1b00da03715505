"""What a material run optimizes and how it stays valid: a principled BSDF on the fixed object, its scalars and
bitmaps registered with one Adam, kept in the research ranges after every step. It implements the loop's parameter
interface (parameters.py); what it writes and measures for the report is in outputs/material.py, the parameter
table (ranges, eta/specular, Blender's sockets) in scene/principled.py, image files in scene/images.py.

Gradients of all views of an epoch accumulate into one step (schedule per_epoch, the default): `apply` only
hands the optimizer's own variables to the scene, it never re-registers them, which is what discarded all but the
last view's gradient in the research code (docs/material.md).
"""
from __future__ import annotations

from pathlib import Path

import drjit as dr
import numpy as np

from ..errors import MRDError
from ..outputs import material as report
from ..scene.images import read_texture, resize
from ..scene.principled import (COLOR_PARAMS, GENERIC_PARAMS, INITS, OPTIMIZABLE, eta_from_specular,
                                specular_from_eta, valid_range)
from ..scene.spec import PRINCIPLED_DEFAULTS, Material
from ..scenes import materials as material_scenes
from .checkpoint import load_optimizer_arrays, optimizer_arrays, optimizer_values

# The research dual_buffer schedule (utils.apply_new_lr): lr = max(FLOOR, lr0 * DECAY^epoch) from epoch 1 on.
RESEARCH_LR_FLOOR, RESEARCH_LR_DECAY = 0.09, 0.95
# A material run on an object without an integrator of its own (a Blender object): a path tracer (prb = `path`
# with path-replay backpropagation, see scenes/materials.py: INTEGRATOR).
DEFAULT_INTEGRATOR = {"type": "prb", "max_depth": 10, "rr_depth": 5}


def _channels(arr: np.ndarray, name: str) -> np.ndarray:
    """An image with the channels a parameter needs: RGB for base_color, one (the mean) for the others."""
    arr = np.asarray(arr, np.float32)
    if arr.ndim == 2:
        arr = arr[..., None]
    if name in COLOR_PARAMS:
        return np.repeat(arr[..., :1], 3, -1) if arr.shape[2] < 3 else arr[..., :3]
    return arr[..., :3].mean(-1, keepdims=True) if arr.shape[2] > 1 else arr


# -- the parameter set ---------------------------------------------------------------------------------------------
def check_texture_size(size) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in size)
        ok = w >= 1 and h >= 1 and [w, h] == [float(x) for x in size]
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise MRDError(f"texture size {size!r} is invalid: give two whole numbers W H of at least 1 "
                       "(research: 720 480)")
    if w * h > 4096 * 4096:
        raise MRDError(f"texture size {w}x{h} is too large: at most 4096x4096 texels")
    return w, h


def resolve_params(requested, scene: str, defaults) -> list[str]:
    """The parameter names to optimize, checked: unknown names list what this scene can optimize."""
    if isinstance(requested, str):
        requested = requested.replace(",", " ").split()
    names = list(defaults) if not requested else [str(x) for x in requested]
    names = list(dict.fromkeys(n.strip() for n in names))
    if not names or any(not n for n in names):
        raise MRDError(f"no material parameters to optimize: give some of {', '.join(OPTIMIZABLE)}")
    unknown = [n for n in names if n not in OPTIMIZABLE]
    if unknown:
        raise MRDError(f"unknown material parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}"
                       f" for scene {scene!r}: the parameters that can be optimized are {', '.join(OPTIMIZABLE)} "
                       f"(default for this scene: {' '.join(defaults)})")
    if "eta" in names and "specular" in names:
        raise MRDError("eta and specular are one parameter of Mitsuba's principled BSDF (specular = F0 / 0.08): "
                       "optimize one of them")
    return names


class MaterialParameters:
    """The Parameters interface (parameters.py) for a principled material on a fixed object."""
    kind = "material"

    # -- set-up ---------------------------------------------------------------------------------------------------
    @classmethod
    def integrator(cls, spec, cfg) -> int:
        if spec.integrator is None:  # an object without an integrator of its own: a path tracer
            spec.integrator = dict(DEFAULT_INTEGRATOR)
        return cfg.spp

    @classmethod
    def integrator_note(cls, cfg, spp_grad: int) -> None:
        return None

    @classmethod
    def build(cls, mi, spec, cfg, log=print, start=None) -> "MaterialParameters":
        return cls.create(mi, spec, cfg, None, log)

    @classmethod
    def create(cls, mi, spec, cfg, folder=None, log=print) -> "MaterialParameters":
        setup = material_scenes.setup(spec.name) if spec.name == cfg.scene else None
        defaults = setup.params if setup else GENERIC_PARAMS
        params = resolve_params(cfg.params, spec.name, defaults)
        size = check_texture_size(cfg.texture_size if cfg.texture_size else material_scenes.DEFAULT_TEXTURE_SIZE)
        init = str(cfg.init or "zero")
        if init not in INITS and not Path(init).suffix:
            raise MRDError(f"unknown material start {init!r}: use zero, gray, noise or the path of an image")
        return cls(mi, spec, cfg, params, size, init, setup, log)

    def __init__(self, mi, spec, cfg, names, size, init, setup=None, log=print):
        self.mi, self.spec, self.cfg, self.log, self.setup = mi, spec, cfg, log, setup
        self.names = names
        self.lr = float(cfg.lr)
        self.lr_scalars = self.lr
        self.research_schedule = cfg.preprocess == "research" and cfg.model == "dual_buffer"
        self.size = size
        self.textures = list(setup.textures) if setup else ["base_color"]
        if spec.uvs is None:
            log(f"note: {spec.name!r} has no UV map: every material parameter is one value (no bitmaps)")
            self.textures = []
        self.start_scalars = self._start_scalars(setup)
        self.start_material = self._start_material(init)
        self.scene = spec.load(material=self.start_material)
        self.params, self.keys, self.prefix = self._register(mi.traverse(self.scene))
        self.opt = mi.ad.Adam(lr=self.lr)
        for n, k in self.keys.items():
            self.opt[k] = dr.clip(self.params[k], *valid_range(n))
        self.params.update(self.opt)
        self.visible = report.visible_texels(self) if self.textures else {}
        self.history: list[dict] = []
        self.target = self._target_values()
        self.start_values = self.state()
        env = spec.environment.name
        if setup is not None and cfg.envmap != env:
            log(f"material scene {spec.name!r} is lit by its own environment ({env}); the envmap argument "
                f"{cfg.envmap!r} is not used, as in the research code")
        log(f"material parameters: {', '.join(f'{n} ({self._describe(n)})' for n in names)}; start {init}; "
            f"lr {self.lr:g}, schedule {self.schedule_description()}")

    # -- start values -------------------------------------------------------------------------------------------------
    def _start_scalars(self, setup) -> dict:
        """The scene's start values, else Mitsuba's defaults; eta and specular are one parameter."""
        start = dict(setup.start) if setup else {}
        if "eta" in self.names and "eta" not in start:
            start["eta"] = eta_from_specular(start.pop("specular", PRINCIPLED_DEFAULTS["specular"]))
        if "specular" in self.names and "eta" in start:
            start["specular"] = specular_from_eta(start.pop("eta"))
        return start

    def _start_bitmaps(self, init, init_image) -> dict:
        """Each texture's start bitmap (zero: the research start, gray, noise, or an image), clipped into the valid
        range where it is optimized (the research clips before the first render, too)."""
        w, h = self.size
        rng = np.random.default_rng(self.cfg.seed)
        self.fixed: dict[str, np.ndarray] = {}
        for n in self.textures:
            c = 3 if n in COLOR_PARAMS else 1
            if init_image is not None:
                arr = _channels(resize(init_image, w, h), n)
            elif init == "gray":
                arr = np.full((h, w, c), 0.5, np.float32)
            elif init == "noise":
                arr = rng.uniform(0.0, 1.0, (h, w, c)).astype(np.float32)
            else:
                arr = np.zeros((h, w, c), np.float32)
            if n in self.names:
                arr = np.clip(arr, *valid_range(n))
            self.fixed[n] = arr
        return dict(self.fixed)

    def _start_material(self, init) -> Material:
        init_image = read_texture(init) if init not in INITS else None
        values = self._start_bitmaps(init, init_image)
        if "base_color" in values:
            base = values.pop("base_color")
        else:  # no UVs: one RGB value, filled like the bitmaps would be
            fill = init_image.reshape(-1, init_image.shape[-1]).mean(0) if init_image is not None else \
                {"zero": 0.0, "gray": 0.5}.get(init, 0.5)
            base = _channels(np.broadcast_to(np.asarray(fill, np.float32), (1, 1, np.size(fill))), "base_color")
            base = base.reshape(3)
            if "base_color" in self.names:
                base = np.clip(base, *valid_range("base_color"))
        for n, v in self.start_scalars.items():
            if n not in values:
                values[n] = v
        for n in self.names:
            if n not in values and n != "base_color":
                values[n] = PRINCIPLED_DEFAULTS[n]
        for n in list(values):
            if n in self.names and np.ndim(values[n]) == 0:
                values[n] = float(np.clip(values[n], *valid_range(n)))
        return Material("principled", base, values)

    def _register(self, all_params) -> tuple:
        """The scene's parameters reduced to the optimized ones: (params, name -> Mitsuba key, key prefix)."""
        prefix = self._prefix(all_params)
        keys = {}
        for n in self.names:
            if n in self.textures:
                key = f"{prefix}{n}.data"
            elif n in ("eta", "specular"):
                key = f"{prefix}{n}"
            else:
                key = f"{prefix}{n}.value"
            if key not in all_params:
                raise MRDError(f"internal: Mitsuba's principled BSDF has no parameter {key!r} here")
            keys[n] = key
        all_params.keep(list(keys.values()))
        return all_params, keys, prefix

    # -- helpers --------------------------------------------------------------------------------------------------
    @staticmethod
    def _prefix(params) -> str:
        for k in params.keys():
            if k.endswith("base_color.data") or k.endswith("base_color.value"):
                return k[: -len("base_color.data" if k.endswith(".data") else "base_color.value")]
        raise MRDError("internal: the optimized object has no principled BSDF")

    def _describe(self, n):
        if n in self.textures:
            w, h = self.size
            return f"{w}x{h} bitmap"
        return "RGB" if n in COLOR_PARAMS else "scalar"

    def schedule_description(self) -> str:
        if self.research_schedule:
            return (f"research dual_buffer: from epoch 1 every parameter but base_color at max({RESEARCH_LR_FLOOR}, "
                    f"lr * {RESEARCH_LR_DECAY}^epoch), base_color at lr")
        return "constant"

    def _np(self, n) -> np.ndarray:
        if n in self.keys:
            a = np.array(dr.detach(self.opt[self.keys[n]]), np.float32)
        else:
            a = np.asarray(self.fixed.get(n, self.start_material.params.get(n)), np.float32)
        return a

    # -- the loop's interface -------------------------------------------------------------------------------------
    def apply(self):
        """Hands the optimizer's variables to the scene. Never re-registers them: that would detach them and drop
        the gradient that earlier views of this epoch accumulated."""
        self.params.update(self.opt)

    def regularization(self):
        return None

    def step(self):
        """One Adam step on the accumulated gradient, then every parameter clamped into its valid range (the only
        place values are clamped), so the next render sees valid values."""
        self.opt.step()
        for n, k in self.keys.items():
            self.opt[k] = dr.clip(self.opt[k], *valid_range(n))  # keeps Adam's moments
        self.params.update(self.opt)

    def state(self) -> dict:
        return {n: self._np(n).copy() for n in self.keys}

    def is_finite(self) -> bool:
        return all(bool(np.isfinite(v).all()) for v in self.state().values())

    def restore(self, state: dict):
        for n, v in state.items():
            k = self.keys[n]
            cur = self.opt[k]
            arr = np.asarray(v, np.float32)
            if n in self.textures:
                new = self.mi.TensorXf(arr)
            elif arr.size == 3:
                new = type(cur)(*[float(x) for x in arr.ravel()])
            else:
                new = type(cur)(arr.ravel())
            self.opt[k] = new
        self.params.update(self.opt)

    # -- checkpoints (checkpoint.py) ----------------------------------------------------------------------------
    def checkpoint(self) -> dict:
        return {"lr_scalars": np.float64(self.lr_scalars), **optimizer_arrays(self.opt)}

    def load_checkpoint(self, arrays: dict):
        values = optimizer_values(arrays)
        self.restore({n: values[k] for n, k in self.keys.items()})
        load_optimizer_arrays(self.opt, arrays)
        self.lr_scalars = float(arrays["lr_scalars"])
        if self.research_schedule and self.lr_scalars != self.lr:
            self.opt.set_learning_rate({k: self.lr_scalars for n, k in self.keys.items() if n != "base_color"})
        self.params.update(self.opt)

    def end_of_epoch(self, epoch: int) -> bool:
        """The learning-rate schedule. Constant, except under --preprocess research with dual_buffer: the research
        code then sets every parameter but base_color to max(0.09, lr * 0.95^epoch) after each epoch from 1 on."""
        if self.research_schedule and epoch >= 1:
            self.lr_scalars = max(RESEARCH_LR_FLOOR, self.lr * RESEARCH_LR_DECAY ** epoch)
            self.opt.set_learning_rate({k: self.lr_scalars for n, k in self.keys.items() if n != "base_color"})
        return False

    # -- what a run reports ---------------------------------------------------------------------------------------
    @property
    def gradient_keys(self) -> list[str]:
        return list(self.keys.values())

    def values(self, state: dict) -> dict:
        textures, material = self.current()
        return {"textures": textures, "material": material}

    def start_metrics(self) -> dict:
        return {}

    def outputs_due(self, epoch: int, remeshed: bool, last: bool) -> bool:
        return epoch % self.cfg.render_every == 0 or last

    def write_start(self, folder) -> None:
        pass

    def end_state(self, last_good: dict, interrupted: bool) -> dict:
        """The values as they are (the final renders show them, as a shape run's show its last good mesh)."""
        return last_good

    def write_final(self, folder, state: dict) -> None:
        folder.files.update(self.write_outputs(folder, "final"))

    def final_mesh(self, state: dict) -> tuple:
        return None, None

    def current(self) -> tuple[dict, dict]:
        """(textures: name -> float32 (H, W, C) linear, material: name -> float or RGB list) of the current
        material, optimized and fixed parameters alike."""
        textures = {n: self._np(n) for n in self.textures}
        material = {}
        for n in ("base_color", *PRINCIPLED_DEFAULTS):
            if n in self.textures:
                continue
            if n in self.keys:
                v = self._np(n).ravel()
            elif n == "base_color":
                v = np.asarray(self.start_material.base_color, np.float32).ravel()
            elif n in ("eta", "specular"):
                continue
            else:
                v = np.asarray([self.start_material.params.get(n, PRINCIPLED_DEFAULTS[n])], np.float32)
            material[n] = [float(x) for x in v] if v.size > 1 else float(v[0])
        eta, spec = self._eta_specular()
        material = {"eta": eta, "specular": spec, **material}  # eta first: the add-on reads IOR before specular
        return textures, material

    def _eta_specular(self) -> tuple[float, float]:
        if "eta" in self.keys:
            eta = float(self._np("eta").ravel()[0])
            return eta, specular_from_eta(eta)
        if "specular" in self.keys:
            s = float(self._np("specular").ravel()[0])
            return eta_from_specular(s), s
        if "eta" in self.start_material.params:
            eta = float(self.start_material.params["eta"])
            return eta, specular_from_eta(eta)
        s = float(self.start_material.params.get("specular", PRINCIPLED_DEFAULTS["specular"]))
        return eta_from_specular(s), s

    def log_values(self, state: dict | None = None, remeshed: bool = False) -> dict:
        """The step entry's material part: current scalars, the scalar lr, per-texel RMSE against the target."""
        entry = {"params": {n: float(v.ravel()[0]) if v.size == 1 else [float(x) for x in v.ravel()]
                            for n, v in ((n, self._np(n)) for n in self.keys if n not in self.textures)},
                 "lr": self.lr_scalars}
        rmse = report.texture_rmse(self)
        if rmse:
            entry["texture_rmse"] = rmse
        self.history.append(entry)
        return entry

    def write_outputs(self, folder, tag, state: dict | None = None) -> dict:
        """`tag`: a step number (files step_NNNNNN_*) or "final" (outputs/material.py says what is written)."""
        return report.write_outputs(self, folder, f"step_{tag:06d}" if isinstance(tag, int) else tag)

    def final_metrics(self, state: dict | None = None, start: dict | None = None) -> dict:
        return report.final_metrics(self)

    # -- target comparison ---------------------------------------------------------------------------------------------
    def _target_values(self) -> dict:
        """The target material's values under the optimized parameters' names: arrays, floats or RGB triples."""
        m = self.spec.material
        if m.kind == "diffuse":
            raw = {"base_color": m.base_color}
        elif m.kind == "principled":
            raw = {"base_color": m.base_color, **{k: v for k, v in PRINCIPLED_DEFAULTS.items()
                                                  if k not in ("eta", "specular")}, **m.params}
            if "eta" in m.params:
                raw["specular"] = specular_from_eta(float(m.params["eta"]))
            else:
                raw.setdefault("specular", PRINCIPLED_DEFAULTS["specular"])
                raw["eta"] = eta_from_specular(float(raw["specular"]))
        else:
            return {}
        out = {}
        for n in self.names:
            v = raw.get(n)
            if v is None:
                continue
            if isinstance(v, (str, Path)):
                v = read_texture(v)
            v = np.asarray(v, np.float32 if np.ndim(v) == 3 else np.float64)
            if v.ndim == 3 and n in self.textures:
                v = _channels(resize(v, *self.size), n)
            elif v.ndim == 3:
                continue  # a texture in the target, one value here: no per-parameter error
            out[n] = v
        return out
