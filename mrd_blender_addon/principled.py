"""Blender's Principled BSDF as the add-on maps it to the backend's principled material, in both directions (export
reads it, apply writes it): the socket of each backend parameter, and the specular conversion.

Specular: Mitsuba's principled BSDF has F0 = 0.08 * specular; Blender 4+ has F0 = ((ior-1)/(ior+1))^2 * 2 * level
(the Specular IOR Level socket), Blender 3.x a Specular socket that is Mitsuba's value.
"""
from __future__ import annotations

# Backend material parameter -> Principled BSDF socket names (4.x first, then 3.x).
SOCKETS = {"base_color": ("Base Color",), "roughness": ("Roughness",), "metallic": ("Metallic",),
           "specular": ("Specular IOR Level", "Specular"), "spec_tint": ("Specular Tint",),
           "anisotropic": ("Anisotropic",), "sheen": ("Sheen Weight", "Sheen"), "sheen_tint": ("Sheen Tint",),
           "clearcoat": ("Coat Weight", "Clearcoat"), "spec_trans": ("Transmission Weight", "Transmission"),
           "eta": ("IOR",)}
COLOR_PARAMS = {"base_color"}      # colour data (sRGB images); every other parameter is non-colour data
MITSUBA_F0_PER_SPECULAR = 0.08


def ior_reflectance(ior: float) -> float:
    """Normal-incidence reflectance of a dielectric with this IOR."""
    return ((ior - 1) / (ior + 1)) ** 2


def specular_from_level(ior: float, level: float) -> float:
    """Mitsuba's specular for Blender 4's IOR and Specular IOR Level (at least 1e-3)."""
    return max(ior_reflectance(ior) * 2 * level / MITSUBA_F0_PER_SPECULAR, 1e-3)


def level_from_specular(specular: float, reflectance: float) -> float:
    """Blender 4's Specular IOR Level that gives Mitsuba's `specular`, for a material of this IOR reflectance."""
    return float(specular) * MITSUBA_F0_PER_SPECULAR / max(2 * reflectance, 1e-6)
