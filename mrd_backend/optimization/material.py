"""What a material run optimizes and how it stays valid: a principled BSDF on the fixed object, its scalars and
bitmaps registered with one Adam, kept in the research ranges after every step.

The run loop (loop.py) is shared with shape runs; this is the material half of its parameter interface:
`apply` (push the optimizer's values into the scene), `step` (Adam, then clamp), `state`/`restore`, `end_of_epoch`
(learning-rate schedule), `values`/`write_outputs`/`final_metrics`/`log_values` (what a run reports).

Gradients of all views of an epoch accumulate into one step (schedule per_epoch, the default): `apply` only
hands the optimizer's own variables to the scene, it never re-registers them, which is what discarded all but the
last view's gradient in the research code (docs/material.md).

Imports inside functions are lazy on purpose: the Blender add-on imports this module for OPTIMIZABLE and INITS, so
at module level it loads numpy and scene/ only (Mitsuba, Dr.Jit, torch, matplotlib, the checkpoint and the bundled
scenes when a run needs them).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import MRDError
from ..scene.spec import PRINCIPLED_DEFAULTS, Material

# Valid values, in one place (the research ranges): every parameter in [0.001, 1] except eta in [0.001, 4.1].
LOWER = 0.001
UPPER = {"eta": 4.1}
COLOR_PARAMS = ("base_color",)
OPTIMIZABLE = ("base_color", *PRINCIPLED_DEFAULTS)     # base_color and every principled scalar
GENERIC_PARAMS = ("base_color", "roughness", "metallic")  # objects that are not a bundled material scene
INITS = ("zero", "gray", "noise")
# The research dual_buffer schedule (utils.apply_new_lr): lr = max(FLOOR, lr0 * DECAY^epoch) from epoch 1 on.
RESEARCH_LR_FLOOR, RESEARCH_LR_DECAY = 0.09, 0.95
# A material run on an object without an integrator of its own (a Blender object): a path tracer (prb = `path`
# with path-replay backpropagation, see scenes/materials.py: INTEGRATOR).
DEFAULT_INTEGRATOR = {"type": "prb", "max_depth": 10, "rr_depth": 5}


def valid_range(name: str) -> tuple[float, float]:
    return LOWER, UPPER.get(name, 1.0)


def eta_from_specular(s: float) -> float:
    """Mitsuba's principled BSDF: specular s <-> eta with F0 = 0.08 s = ((eta - 1) / (eta + 1))^2."""
    r = np.sqrt(np.clip(0.08 * float(s), 0.0, 0.99))
    return float((1 + r) / (1 - r))


def specular_from_eta(eta: float) -> float:
    return float(((eta - 1) / (eta + 1)) ** 2 / 0.08)


# -- images --------------------------------------------------------------------------------------------------------
def read_texture(path) -> np.ndarray:
    """An image file as a linear float32 (H, W, C) array (8-bit files are decoded from sRGB)."""
    from ..render.variant import mitsuba
    mi = mitsuba()
    p = Path(path)
    if not p.is_file():
        raise MRDError(f"texture file {p} does not exist: give a PNG, JPG or EXR image")
    try:
        bmp = mi.Bitmap(str(p))
        fmt = mi.Bitmap.PixelFormat.Y if bmp.channel_count() in (1, 2) else mi.Bitmap.PixelFormat.RGB
        arr = np.array(bmp.convert(fmt, mi.Struct.Type.Float32, srgb_gamma=False), np.float32)
    except Exception as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise MRDError(f"cannot read texture file {p} ({msg[:200]}): give a PNG, JPG or EXR image") from None
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.size == 0 or not np.isfinite(arr).all():
        raise MRDError(f"texture file {p} is empty or holds NaN/inf values: give another image")
    return arr


def resize(arr: np.ndarray, w: int, h: int) -> np.ndarray:
    """(H, W, C) float image resampled to (h, w, C): antialiased bilinear (texel centres)."""
    arr = np.asarray(arr, np.float32)
    if arr.shape[:2] == (h, w):
        return arr.copy()
    import torch
    t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None]
    out = torch.nn.functional.interpolate(t, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return out[0].numpy().transpose(1, 2, 0).astype(np.float32)


def to_srgb(linear: np.ndarray) -> np.ndarray:
    x = np.clip(np.asarray(linear, np.float64), 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def from_srgb(srgb: np.ndarray) -> np.ndarray:
    x = np.asarray(srgb, np.float64)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


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
        from ..scenes import materials as material_scenes
        setup = material_scenes.setup(spec.name) if spec.name == cfg.scene else None
        defaults = setup.params if setup else GENERIC_PARAMS
        params = resolve_params(cfg.params, spec.name, defaults)
        size = check_texture_size(cfg.texture_size if cfg.texture_size else material_scenes.DEFAULT_TEXTURE_SIZE)
        init = str(cfg.init or "zero")
        if init not in INITS and not Path(init).suffix:
            raise MRDError(f"unknown material start {init!r}: use zero, gray, noise or the path of an image")
        return cls(mi, spec, cfg, params, size, init, setup, log)

    def __init__(self, mi, spec, cfg, names, size, init, setup=None, log=print):
        import drjit as dr
        self.mi, self.spec, self.cfg, self.log, self.setup = mi, spec, cfg, log, setup
        self.names = names
        self.lr = float(cfg.lr)
        self.lr_scalars = self.lr
        self.research_schedule = cfg.preprocess == "research" and cfg.model == "dual_buffer"
        self.size = size
        w, h = size
        has_uvs = spec.uvs is not None
        tex_names = list(setup.textures) if setup else ["base_color"]
        if not has_uvs:
            log(f"note: {spec.name!r} has no UV map: every material parameter is one value (no bitmaps)")
            tex_names = []
        self.textures = [n for n in tex_names]
        # Start values: the scene's, else Mitsuba's defaults; eta and specular are one parameter.
        start = dict(setup.start) if setup else {}
        if "eta" in names and "eta" not in start:
            start["eta"] = eta_from_specular(start.pop("specular", PRINCIPLED_DEFAULTS["specular"]))
        if "specular" in names and "eta" in start:
            start["specular"] = specular_from_eta(start.pop("eta"))
        self.start_scalars = start
        rng = np.random.default_rng(cfg.seed)
        init_image = read_texture(init) if init not in INITS else None
        self.fixed: dict[str, np.ndarray] = {}
        values = {}
        for n in self.textures:
            c = 3 if n in COLOR_PARAMS else 1
            if init_image is not None:
                arr = _channels(resize(init_image, w, h), n)
            elif init == "gray":
                arr = np.full((h, w, c), 0.5, np.float32)
            elif init == "noise":
                arr = rng.uniform(0.0, 1.0, (h, w, c)).astype(np.float32)
            else:
                arr = np.zeros((h, w, c), np.float32)  # the research start
            if n in names:
                arr = np.clip(arr, *valid_range(n))  # the research clips before the first render, too
            values[n] = arr
            self.fixed[n] = arr
        if "base_color" in values:
            base = values.pop("base_color")
        else:  # no UVs: one RGB value, filled like the bitmaps would be
            fill = init_image.reshape(-1, init_image.shape[-1]).mean(0) if init_image is not None else \
                {"zero": 0.0, "gray": 0.5}.get(init, 0.5)
            base = _channels(np.broadcast_to(np.asarray(fill, np.float32), (1, 1, np.size(fill))), "base_color")
            base = base.reshape(3)
            if "base_color" in names:
                base = np.clip(base, *valid_range("base_color"))
        for n, v in start.items():
            if n not in values:
                values[n] = v
        for n in names:
            if n not in values and n != "base_color":
                values[n] = PRINCIPLED_DEFAULTS[n]
        for n in list(values):
            if n in names and np.ndim(values[n]) == 0:
                values[n] = float(np.clip(values[n], *valid_range(n)))
        self.start_material = Material("principled", base, values)
        self.scene = spec.load(material=self.start_material)
        all_params = mi.traverse(self.scene)
        prefix = self._prefix(all_params)
        self.keys = {}
        for n in names:
            if n in self.textures:
                key = f"{prefix}{n}.data"
            elif n in ("eta", "specular"):
                key = f"{prefix}{n}"
            else:
                key = f"{prefix}{n}.value"
            if key not in all_params:
                raise MRDError(f"internal: Mitsuba's principled BSDF has no parameter {key!r} here")
            self.keys[n] = key
        self.prefix = prefix
        all_params.keep(list(self.keys.values()))
        self.params = all_params
        self.opt = mi.ad.Adam(lr=self.lr)
        for n, k in self.keys.items():
            self.opt[k] = dr.clip(self.params[k], *valid_range(n))
        self.params.update(self.opt)
        self.visible = self._visible_texels() if self.textures else {}
        self.history: list[dict] = []
        self.target = self._target_values()
        self.start_values = self.state()
        env = spec.environment.name
        if setup is not None and cfg.envmap != env:
            log(f"material scene {spec.name!r} is lit by its own environment ({env}); the envmap argument "
                f"{cfg.envmap!r} is not used, as in the research code")
        log(f"material parameters: {', '.join(f'{n} ({self._describe(n)})' for n in names)}; start {init}; "
            f"lr {self.lr:g}, schedule {self.schedule_description()}")

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
        import drjit as dr
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
        import drjit as dr
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
        from .checkpoint import optimizer_arrays
        return {"lr_scalars": np.float64(self.lr_scalars), **optimizer_arrays(self.opt)}

    def load_checkpoint(self, arrays: dict):
        from .checkpoint import load_optimizer_arrays, optimizer_values
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
        rmse = self._texture_rmse()
        if rmse:
            entry["texture_rmse"] = rmse
        self.history.append(entry)
        return entry

    def write_outputs(self, folder, tag, state: dict | None = None) -> dict:
        """`tag`: a step number (files step_NNNNNN_*) or "final". Textures as 8-bit PNG (sRGB for base_color, the values themselves for data maps) and linear EXR under
        textures/; at "final" also the material as a Mitsuba dict and a Blender Principled BSDF description."""
        tag = f"step_{tag:06d}" if isinstance(tag, int) else tag
        textures, material = self.current()
        files = {}
        for n, arr in textures.items():
            exr = folder.write_exr(f"textures/{tag}_{n}.exr", arr, "textures")
            png_data = to_srgb(arr) if n in COLOR_PARAMS else np.clip(arr, 0, 1)
            png = _write_png(folder, f"textures/{tag}_{n}.png", png_data)
            folder.files.setdefault("textures", []).append(folder.rel(png))
            files[f"texture_{n}"] = folder.rel(png)
            files[f"texture_{n}_exr"] = folder.rel(exr)
        if tag == "final":
            files["material_mitsuba"] = folder.rel(folder.write_json("material_mitsuba.json",
                                                                     self.mitsuba_dict(files, material)))
            files["material_blender"] = folder.rel(folder.write_json("material_blender.json",
                                                                     self.blender_description(files, material)))
            curves = self._plot(folder.path / "material_curves.png")
            if curves:
                files["material_curves"] = folder.rel(curves)
        return files

    def mitsuba_dict(self, files: dict, material: dict) -> dict:
        """The final material as a Mitsuba plugin dict (bitmap paths relative to the run folder)."""
        d = {"type": "principled"}
        for n in ("base_color", *PRINCIPLED_DEFAULTS):
            if n in self.textures:
                d[n] = {"type": "bitmap", "filename": files[f"texture_{n}_exr"], "raw": True}
            elif n == "base_color":
                d[n] = {"type": "rgb", "value": list(material["base_color"])}
            elif n == "specular" or (n == "eta" and "eta" not in self.keys and "eta" not in self.start_material.params):
                continue
            elif n == "eta":
                d[n] = material["eta"]
            else:
                d[n] = material[n]
        if "eta" not in d:
            d["specular"] = material["specular"]
        return d

    def blender_description(self, files: dict, material: dict) -> dict:
        """Principled BSDF socket values for Blender 4.x (and 3.x), with textures as image files."""
        def val(n):
            if n in self.textures:
                cs = "Linear Rec.709" if n in COLOR_PARAMS else "Non-Color"
                return {"image": files[f"texture_{n}_exr"], "png": files[f"texture_{n}"], "colorspace": cs}
            return material[n]

        def coat_roughness(gloss):
            if isinstance(gloss, dict):
                return None
            return float(np.sqrt(0.1 + (0.001 - 0.1) * gloss))  # Disney: alpha = lerp(0.1, 0.001, gloss)

        b4 = {"Base Color": val("base_color"), "Metallic": val("metallic"), "Roughness": val("roughness"),
              "IOR": material["eta"], "Specular IOR Level": 0.5, "Anisotropic": val("anisotropic"),
              "Transmission Weight": val("spec_trans"), "Coat Weight": val("clearcoat"),
              "Coat Roughness": coat_roughness(val("clearcoat_gloss")), "Sheen Weight": val("sheen")}
        b3 = {"Base Color": val("base_color"), "Metallic": val("metallic"), "Roughness": val("roughness"),
              "IOR": material["eta"], "Specular": material["specular"], "Specular Tint": val("spec_tint"),
              "Anisotropic": val("anisotropic"), "Transmission": val("spec_trans"), "Clearcoat": val("clearcoat"),
              "Clearcoat Roughness": coat_roughness(val("clearcoat_gloss")), "Sheen": val("sheen"),
              "Sheen Tint": val("sheen_tint")}
        return {
            "format": "mrd-principled-bsdf", "version": 1, "node": "ShaderNodeBsdfPrincipled",
            "inputs": {k: v for k, v in b4.items() if v is not None},
            "inputs_blender_3": {k: v for k, v in b3.items() if v is not None},
            "mitsuba": {n: val(n) for n in ("base_color", *PRINCIPLED_DEFAULTS) if n in self.textures or n in material},
            "paths": "relative to the run folder",
            "notes": [
                "Mitsuba's specular s is F0 = 0.08 s; Blender 4 gets the equivalent IOR with Specular IOR Level 0.5, "
                "Blender 3 gets Specular = s and IOR for transmission",
                "Coat Roughness = sqrt(lerp(0.1, 0.001, clearcoat_gloss)) (Disney's clear-coat alpha), approximate",
                "spec_tint and sheen_tint are colours in Blender 4 (scalars here): only in inputs_blender_3 and "
                "mitsuba; flatness (principled thin) has no Principled BSDF socket",
                "Blender and Mitsuba implement the principled model differently: renders match closely, not exactly"],
        }

    def final_metrics(self, state: dict | None = None, start: dict | None = None) -> dict:
        """Per-texel RMSE against the target texture (where the target has one) and per-parameter error against the
        target's scalars, at the start and at the end."""
        end = self.state()
        out = {"scene": self.spec.name, "params": list(self.names), "texture_size": list(self.size),
               "textures": list(self.textures), "environment": self.spec.environment.name,
               "target": {"kind": self.spec.material.kind,
                          "note": self.setup.note if self.setup else "the target object's own material"},
               "lr_schedule": self.schedule_description(), "ranges": {n: list(valid_range(n)) for n in self.names}}
        start_rmse, end_rmse = self._texture_rmse(self.start_values, True), self._texture_rmse(end, True)
        if start_rmse:
            out["texture_rmse"] = {n: {"start": start_rmse[n]["all"], "end": end_rmse[n]["all"],
                                       "start_visible": start_rmse[n]["seen"], "end_visible": end_rmse[n]["seen"],
                                       "visible_fraction": end_rmse[n]["seen_fraction"]} for n in start_rmse}
        errs = {}
        for n in self.keys:
            if n in self.textures or n not in self.target or np.ndim(self.target[n]) > 1:
                continue
            t = np.asarray(self.target[n], np.float64).ravel()
            s, e = np.asarray(self.start_values[n], np.float64).ravel(), np.asarray(end[n], np.float64).ravel()
            errs[n] = {"target": _num(t), "start": _num(s), "end": _num(e),
                       "error_start": float(np.abs(s - t).mean()), "error_end": float(np.abs(e - t).mean())}
        if errs:
            out["parameter_error"] = errs
        _, out["final"] = self.current()
        return {"material": out}

    # -- target comparison ------------------------------------------------------------------------------------------
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

    def _visible_texels(self, supersample: int = 2) -> dict:
        """Texels that some camera sees directly (their bilinear footprint at the hit points of rays through a
        grid of supersample^2 points per pixel): where a texture can be recovered at all."""
        import drjit as dr
        mi = self.mi
        w, h = self.size
        mask = np.zeros((h, w), bool)
        objects = [s for s in self.scene.shapes() if s.id() == "shape"]
        if not objects:
            return {}
        rig = self.spec.cameras
        nx, ny = rig.width * supersample, rig.height * supersample
        x, y = np.meshgrid((np.arange(nx) + 0.5) / nx, (np.arange(ny) + 0.5) / ny)
        pos = mi.Point2f(x.ravel().astype(np.float32), y.ravel().astype(np.float32))
        with dr.suspend_grad():
            for sensor in self.spec.sensors(spp=1):
                ray, _ = sensor.sample_ray(0.0, 0.5, pos, mi.Point2f(0.5, 0.5))
                si = self.scene.ray_intersect(ray)
                hit = np.asarray(si.is_valid() & (si.shape == mi.ShapePtr(objects[0])), bool)
                uv = np.asarray(si.uv).reshape(2, -1).T[hit]
                for dx in (0, 1):
                    for dy in (0, 1):
                        cx = np.floor(uv[:, 0] * w - 0.5).astype(np.int64) + dx
                        cy = np.floor(uv[:, 1] * h - 0.5).astype(np.int64) + dy
                        mask[np.clip(cy, 0, h - 1), cx % w] = True
        return {n: mask for n in self.textures}

    def _texture_rmse(self, state: dict | None = None, detail: bool = False) -> dict:
        state = state if state is not None else self.state()
        out = {}
        for n in self.textures:
            if n not in self.target or n not in state:
                continue
            t = np.asarray(self.target[n], np.float32)
            cur = np.asarray(state[n], np.float32)
            t = np.broadcast_to(t.reshape(t.shape if t.ndim == 3 else (1, 1, -1)), cur.shape)
            d2 = ((cur - t) ** 2).mean(-1)
            rmse = float(np.sqrt(d2.mean()))
            if not detail:
                out[n] = rmse
                continue
            seen = self.visible.get(n)
            frac = float(seen.mean()) if seen is not None else 0.0
            out[n] = {"all": rmse, "seen": float(np.sqrt(d2[seen].mean())) if frac > 0 else None,
                      "seen_fraction": frac}
        return out

    def _plot(self, path: Path):
        """Scalar parameter curves (and texel RMSE) over the logged steps."""
        if not self.history:
            return None
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            scalars = [n for n in self.history[0]["params"] if np.ndim(self.history[0]["params"][n]) == 0]
            rmse = list(self.history[0].get("texture_rmse", {}))
            panels = (1 if scalars else 0) + (1 if rmse else 0)
            if not panels:
                return None
            fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 3.2), squeeze=False)
            colors = plt.get_cmap("tab20").colors
            x = np.arange(len(self.history))
            ax = iter(axes[0])
            if scalars:
                a = next(ax)
                for i, n in enumerate(scalars):
                    a.plot(x, [h["params"][n] for h in self.history], label=n, color=colors[i % 20])
                    if n in self.target and np.ndim(self.target[n]) == 0:
                        a.axhline(float(self.target[n]), ls=":", lw=0.8, color=a.lines[-1].get_color())
                a.set(xlabel="step (epoch)", title="material parameters (dotted: target)")
                a.legend(fontsize=7, ncol=2)
            if rmse:
                a = next(ax)
                for n in rmse:
                    a.plot(x, [h["texture_rmse"][n] for h in self.history], label=n)
                a.set(xlabel="step (epoch)", ylabel="RMSE", title="per-texel RMSE to the target texture")
                a.legend(fontsize=7)
            fig.tight_layout()
            tmp = path.with_name(path.stem + ".tmp.png")
            fig.savefig(tmp, dpi=100)
            plt.close(fig)
            tmp.replace(path)
            return path
        except Exception as exc:
            self.log(f"warning: could not plot the material curves ({type(exc).__name__}: {exc})")
            return None


def _num(a: np.ndarray):
    return float(a[0]) if a.size == 1 else [float(x) for x in a]


def _write_png(folder, name: str, data: np.ndarray) -> Path:
    """An 8-bit PNG of values in [0, 1] (1-channel maps as grayscale), written atomically."""
    import imageio.v3 as iio
    p = folder.path / name
    tmp = p.with_name(p.stem + ".tmp.png")
    u8 = (np.clip(np.asarray(data), 0, 1) * 255 + 0.5).astype(np.uint8)
    iio.imwrite(tmp, u8[..., 0] if u8.shape[-1] == 1 else u8)
    tmp.replace(p)
    return p
