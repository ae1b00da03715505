"""Blender's Principled BSDF as the add-on maps it to the backend's principled material, in both directions (export
reads it, apply writes it). The table itself (the socket of each backend parameter, the specular <-> Specular IOR
Level conversion) has one home, the backend's numpy-only scene/principled.py, which the run's material_blender.json
is written from too; this module hands it to the add-on's bpy code."""
from __future__ import annotations

from .client import backend

_table = backend().scene.principled

SOCKETS = _table.SOCKETS                     # backend parameter -> socket names (4.x first, then 3.x)
COLOR_PARAMS = set(_table.COLOR_PARAMS)      # colour data (sRGB images); every other parameter is non-colour data
ior_reflectance = _table.ior_reflectance
specular_from_level = _table.specular_from_level
level_from_specular = _table.level_from_specular
