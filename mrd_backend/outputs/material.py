"""What a material run reports and exports: its textures (PNG and EXR under textures/), the final material as a
Mitsuba plugin dict and as a Blender Principled BSDF description, errors against the target (per-texel RMSE, on all
texels and on those a camera sees, and per-parameter), and the parameter curves. Reads a MaterialParameters
(optimization/material.py); writes through the run folder's atomic writers (folder.py, figures.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..scene.images import to_srgb
from ..scene.principled import COLOR_PARAMS, blender_inputs, valid_range
from ..scene.spec import PRINCIPLED_DEFAULTS
from .figures import save_figure


def write_outputs(p, folder, tag: str) -> dict:
    """Textures as 8-bit PNG (sRGB for base_color, the values themselves for data maps) and linear EXR under
    textures/; at "final" also the material as a Mitsuba dict and a Blender Principled BSDF description."""
    textures, material = p.current()
    files = {}
    for n, arr in textures.items():
        exr = folder.write_exr(f"textures/{tag}_{n}.exr", arr, "textures")
        png_data = to_srgb(arr) if n in COLOR_PARAMS else np.clip(arr, 0, 1)
        png = folder.write_png(f"textures/{tag}_{n}.png", png_data[..., 0] if png_data.shape[-1] == 1 else png_data,
                               "textures")  # 1-channel maps as grayscale
        files[f"texture_{n}"] = folder.rel(png)
        files[f"texture_{n}_exr"] = folder.rel(exr)
    if tag == "final":
        files["material_mitsuba"] = folder.rel(folder.write_json("material_mitsuba.json",
                                                                 mitsuba_dict(p, files, material)))
        files["material_blender"] = folder.rel(folder.write_json("material_blender.json",
                                                                 blender_description(p, files, material)))
        curves = plot(p, folder.path / "material_curves.png")
        if curves:
            files["material_curves"] = folder.rel(curves)
    return files


def mitsuba_dict(p, files: dict, material: dict) -> dict:
    """The final material as a Mitsuba plugin dict (bitmap paths relative to the run folder)."""
    d = {"type": "principled"}
    for n in ("base_color", *PRINCIPLED_DEFAULTS):
        if n in p.textures:
            d[n] = {"type": "bitmap", "filename": files[f"texture_{n}_exr"], "raw": True}
        elif n == "base_color":
            d[n] = {"type": "rgb", "value": list(material["base_color"])}
        elif n == "specular" or (n == "eta" and "eta" not in p.keys and "eta" not in p.start_material.params):
            continue
        elif n == "eta":
            d[n] = material["eta"]
        else:
            d[n] = material[n]
    if "eta" not in d:
        d["specular"] = material["specular"]
    return d


def blender_description(p, files: dict, material: dict) -> dict:
    """Principled BSDF socket values for Blender 4.x (and 3.x), with textures as image files."""
    def val(n):
        if n in p.textures:
            cs = "Linear Rec.709" if n in COLOR_PARAMS else "Non-Color"
            return {"image": files[f"texture_{n}_exr"], "png": files[f"texture_{n}"], "colorspace": cs}
        return material[n]

    return {
        "format": "mrd-principled-bsdf", "version": 1, "node": "ShaderNodeBsdfPrincipled",
        "inputs": blender_inputs(val, material["eta"], material["specular"]),
        "inputs_blender_3": blender_inputs(val, material["eta"], material["specular"], blender_3=True),
        "mitsuba": {n: val(n) for n in ("base_color", *PRINCIPLED_DEFAULTS) if n in p.textures or n in material},
        "paths": "relative to the run folder",
        "notes": [
            "Mitsuba's specular s is F0 = 0.08 s; Blender 4 gets the equivalent IOR with Specular IOR Level 0.5, "
            "Blender 3 gets Specular = s and IOR for transmission",
            "Coat Roughness = sqrt(lerp(0.1, 0.001, clearcoat_gloss)) (Disney's clear-coat alpha), approximate",
            "spec_tint and sheen_tint are colours in Blender 4 (scalars here): only in inputs_blender_3 and "
            "mitsuba; flatness (principled thin) has no Principled BSDF socket",
            "Blender and Mitsuba implement the principled model differently: renders match closely, not exactly"],
    }


def final_metrics(p) -> dict:
    """Per-texel RMSE against the target texture (where the target has one) and per-parameter error against the
    target's scalars, at the start and at the end."""
    end = p.state()
    out = {"scene": p.spec.name, "params": list(p.names), "texture_size": list(p.size),
           "textures": list(p.textures), "environment": p.spec.environment.name,
           "target": {"kind": p.spec.material.kind,
                      "note": p.setup.note if p.setup else "the target object's own material"},
           "lr_schedule": p.schedule_description(), "ranges": {n: list(valid_range(n)) for n in p.names}}
    start_rmse, end_rmse = texture_rmse(p, p.start_values, True), texture_rmse(p, end, True)
    if start_rmse:
        out["texture_rmse"] = {n: {"start": start_rmse[n]["all"], "end": end_rmse[n]["all"],
                                   "start_visible": start_rmse[n]["seen"], "end_visible": end_rmse[n]["seen"],
                                   "visible_fraction": end_rmse[n]["seen_fraction"]} for n in start_rmse}
    errs = {}
    for n in p.keys:
        if n in p.textures or n not in p.target or np.ndim(p.target[n]) > 1:
            continue
        t = np.asarray(p.target[n], np.float64).ravel()
        s, e = np.asarray(p.start_values[n], np.float64).ravel(), np.asarray(end[n], np.float64).ravel()
        errs[n] = {"target": _num(t), "start": _num(s), "end": _num(e),
                   "error_start": float(np.abs(s - t).mean()), "error_end": float(np.abs(e - t).mean())}
    if errs:
        out["parameter_error"] = errs
    _, out["final"] = p.current()
    return {"material": out}


def visible_texels(p, supersample: int = 2) -> dict:
    """Texels that some camera sees directly (their bilinear footprint at the hit points of rays through a
    grid of supersample^2 points per pixel): where a texture can be recovered at all."""
    import drjit as dr  # Dr.Jit and Mitsuba: loaded by the run already
    mi = p.mi
    w, h = p.size
    mask = np.zeros((h, w), bool)
    objects = [s for s in p.scene.shapes() if s.id() == "shape"]
    if not objects:
        return {}
    rig = p.spec.cameras
    nx, ny = rig.width * supersample, rig.height * supersample
    x, y = np.meshgrid((np.arange(nx) + 0.5) / nx, (np.arange(ny) + 0.5) / ny)
    pos = mi.Point2f(x.ravel().astype(np.float32), y.ravel().astype(np.float32))
    with dr.suspend_grad():
        for sensor in p.spec.sensors(spp=1):
            ray, _ = sensor.sample_ray(0.0, 0.5, pos, mi.Point2f(0.5, 0.5))
            si = p.scene.ray_intersect(ray)
            hit = np.asarray(si.is_valid() & (si.shape == mi.ShapePtr(objects[0])), bool)
            uv = np.asarray(si.uv).reshape(2, -1).T[hit]
            for dx in (0, 1):
                for dy in (0, 1):
                    cx = np.floor(uv[:, 0] * w - 0.5).astype(np.int64) + dx
                    cy = np.floor(uv[:, 1] * h - 0.5).astype(np.int64) + dy
                    mask[np.clip(cy, 0, h - 1), cx % w] = True
    return {n: mask for n in p.textures}


def texture_rmse(p, state: dict | None = None, detail: bool = False) -> dict:
    state = state if state is not None else p.state()
    out = {}
    for n in p.textures:
        if n not in p.target or n not in state:
            continue
        t = np.asarray(p.target[n], np.float32)
        cur = np.asarray(state[n], np.float32)
        t = np.broadcast_to(t.reshape(t.shape if t.ndim == 3 else (1, 1, -1)), cur.shape)
        d2 = ((cur - t) ** 2).mean(-1)
        rmse = float(np.sqrt(d2.mean()))
        if not detail:
            out[n] = rmse
            continue
        seen = p.visible.get(n)
        frac = float(seen.mean()) if seen is not None else 0.0
        out[n] = {"all": rmse, "seen": float(np.sqrt(d2[seen].mean())) if frac > 0 else None,
                  "seen_fraction": frac}
    return out


def plot(p, path: Path) -> Path | None:
    """Scalar parameter curves (and texel RMSE) over the logged steps."""
    history = p.history
    if not history:
        return None
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        scalars = [n for n in history[0]["params"] if np.ndim(history[0]["params"][n]) == 0]
        rmse = list(history[0].get("texture_rmse", {}))
        panels = (1 if scalars else 0) + (1 if rmse else 0)
        if not panels:
            return None
        fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 3.2), squeeze=False)
        colors = plt.get_cmap("tab20").colors
        x = np.arange(len(history))
        ax = iter(axes[0])
        if scalars:
            a = next(ax)
            for i, n in enumerate(scalars):
                a.plot(x, [h["params"][n] for h in history], label=n, color=colors[i % 20])
                if n in p.target and np.ndim(p.target[n]) == 0:
                    a.axhline(float(p.target[n]), ls=":", lw=0.8, color=a.lines[-1].get_color())
            a.set(xlabel="step (epoch)", title="material parameters (dotted: target)")
            a.legend(fontsize=7, ncol=2)
        if rmse:
            a = next(ax)
            for n in rmse:
                a.plot(x, [h["texture_rmse"][n] for h in history], label=n)
            a.set(xlabel="step (epoch)", ylabel="RMSE", title="per-texel RMSE to the target texture")
            a.legend(fontsize=7)
        fig.tight_layout()
        return save_figure(fig, path, dpi=100)
    except Exception as exc:
        p.log(f"warning: could not plot the material curves ({type(exc).__name__}: {exc})")
        return None


def _num(a: np.ndarray):
    return float(a[0]) if a.size == 1 else [float(x) for x in a]
