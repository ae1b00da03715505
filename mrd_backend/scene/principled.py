"""The principled material, as one table both sides read: which parameters a material run can optimize, their valid
ranges and start options, how Mitsuba's specular relates to IOR and to Blender's Specular IOR Level, and which
Blender Principled BSDF socket holds each parameter (the add-on exports and applies through this table, the run's
material_blender.json is written from it). numpy only: Blender's Python imports it (client.backend()).

Specular: Mitsuba's principled BSDF has F0 = 0.08 * specular; Blender 4+ has F0 = ((ior-1)/(ior+1))^2 * 2 * level
(the Specular IOR Level socket), Blender 3.x a Specular socket that is Mitsuba's value.
"""
from __future__ import annotations

import numpy as np

from .spec import PRINCIPLED_DEFAULTS

# Valid values, in one place (the research ranges): every parameter in [0.001, 1] except eta in [0.001, 4.1].
LOWER = 0.001
UPPER = {"eta": 4.1}
COLOR_PARAMS = ("base_color",)                         # colour data (sRGB images); the others are non-colour data
OPTIMIZABLE = ("base_color", *PRINCIPLED_DEFAULTS)     # base_color and every principled scalar
GENERIC_PARAMS = ("base_color", "roughness", "metallic")  # objects that are not a bundled material scene
INITS = ("zero", "gray", "noise")                      # material starts besides the path of an image

# Backend material parameter -> Principled BSDF socket names (4.x first, then 3.x).
SOCKETS = {"base_color": ("Base Color",), "roughness": ("Roughness",), "metallic": ("Metallic",),
           "specular": ("Specular IOR Level", "Specular"), "spec_tint": ("Specular Tint",),
           "anisotropic": ("Anisotropic",), "sheen": ("Sheen Weight", "Sheen"), "sheen_tint": ("Sheen Tint",),
           "clearcoat": ("Coat Weight", "Clearcoat"), "spec_trans": ("Transmission Weight", "Transmission"),
           "eta": ("IOR",)}
# clearcoat_gloss has no socket of its own: Blender's coat roughness, converted (coat_roughness).
COAT_ROUGHNESS = ("Coat Roughness", "Clearcoat Roughness")
MITSUBA_F0_PER_SPECULAR = 0.08
NEUTRAL_SPECULAR_LEVEL = 0.5   # Blender 4's Specular IOR Level at which F0 comes from the IOR alone


def valid_range(name: str) -> tuple[float, float]:
    return LOWER, UPPER.get(name, 1.0)


def ior_reflectance(ior: float) -> float:
    """Normal-incidence reflectance (F0) of a dielectric with this IOR."""
    return ((ior - 1) / (ior + 1)) ** 2


def eta_from_specular(s: float) -> float:
    """Mitsuba's principled BSDF: specular s <-> eta with F0 = 0.08 s = ((eta - 1) / (eta + 1))^2."""
    r = np.sqrt(np.clip(MITSUBA_F0_PER_SPECULAR * float(s), 0.0, 0.99))
    return float((1 + r) / (1 - r))


def specular_from_eta(eta: float) -> float:
    return float(ior_reflectance(eta) / MITSUBA_F0_PER_SPECULAR)


def specular_from_level(ior: float, level: float) -> float:
    """Mitsuba's specular for Blender 4's IOR and Specular IOR Level (at least 1e-3)."""
    return max(ior_reflectance(ior) * 2 * level / MITSUBA_F0_PER_SPECULAR, 1e-3)


def level_from_specular(specular: float, reflectance: float) -> float:
    """Blender 4's Specular IOR Level that gives Mitsuba's `specular`, for a material of this IOR reflectance."""
    return float(specular) * MITSUBA_F0_PER_SPECULAR / max(2 * reflectance, 1e-6)


def coat_roughness(gloss) -> float | None:
    """Blender's coat roughness for Mitsuba's clearcoat_gloss: Disney's alpha = lerp(0.1, 0.001, gloss), as a
    roughness sqrt(alpha) (approximate); None for a texture."""
    if isinstance(gloss, dict):
        return None
    return float(np.sqrt(0.1 + (0.001 - 0.1) * gloss))


def blender_inputs(val, eta: float, specular: float, blender_3: bool = False) -> dict:
    """Principled BSDF socket -> value, for Blender 4.x or 3.x, in the panel's order: `val(name)` gives each backend
    parameter's value (a number, an RGB list or an image description). Sockets without a value are left out."""
    pick = -1 if blender_3 else 0
    out = {SOCKETS[n][pick]: val(n) for n in ("base_color", "metallic", "roughness")}
    out[SOCKETS["eta"][0]] = eta
    out[SOCKETS["specular"][pick]] = specular if blender_3 else NEUTRAL_SPECULAR_LEVEL
    if blender_3:
        out[SOCKETS["spec_tint"][0]] = val("spec_tint")
    out.update({SOCKETS[n][pick]: val(n) for n in ("anisotropic", "spec_trans", "clearcoat")})
    out[COAT_ROUGHNESS[pick]] = coat_roughness(val("clearcoat_gloss"))
    out[SOCKETS["sheen"][pick]] = val("sheen")
    if blender_3:
        out[SOCKETS["sheen_tint"][0]] = val("sheen_tint")
    return {k: v for k, v in out.items() if v is not None}
