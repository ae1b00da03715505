"""The scene's lamps -> mrd Lights (point, spot, sun, area in Cycles' units), and the warning when nothing lights
the target."""
from __future__ import annotations

import math

import bpy
import numpy as np

from ..client import backend

DIM_WORLD = 0.2   # a constant world below this (colour x strength) and no lamp: the object renders almost black


def lights_spec(depsgraph, notes: list | None = None) -> list:
    """Every lamp that renders (visible, power above 0) as mrd Lights, converted as Cycles lights them."""
    lights_mod = backend().scene.lights
    notes = [] if notes is None else notes
    out = []
    for inst in depsgraph.object_instances:
        ob = inst.object
        if ob is None or ob.type != "LIGHT":
            continue
        la = ob.data
        if getattr(ob, "hide_render", False):
            continue
        energy = float(la.energy) * 2.0 ** float(getattr(la, "exposure", 0.0))
        color = np.array(la.color[:3], np.float64)
        if getattr(la, "use_temperature", False):
            color = color * np.array(la.temperature_color[:3], np.float64)
        if energy <= 0 or color.max() <= 0:
            continue
        where = f"light {ob.name!r}"
        if getattr(la, "use_nodes", False) and la.node_tree is not None:
            notes.append(f"{where}: its shader nodes are ignored (colour x power only)")
        kw = {}
        if la.type == "SPOT":
            kw.update(spot_size=float(la.spot_size), spot_blend=float(la.spot_blend))
            if getattr(la, "use_square", False):
                notes.append(f"{where}: a square spot is exported as a round one")
            sc = np.array(inst.matrix_world.to_scale())
            if abs(sc[0] - sc[1]) > 1e-4 * max(abs(sc[0]), 1e-9):
                notes.append(f"{where}: the object's non-uniform scale (an elliptic cone) is ignored")
        elif la.type == "AREA":
            kw.update(shape=la.shape, size=float(la.size), size_y=float(la.size_y),
                      normalize=bool(getattr(la, "normalize", True)))
            if float(getattr(la, "spread", math.pi)) < math.pi - 1e-4:
                notes.append(f"{where}: its spread of {math.degrees(la.spread):.0f} deg is ignored (180 deg)")
        elif la.type == "SUN" and float(getattr(la, "angle", 0.0)) > math.radians(5):
            notes.append(f"{where}: its angle of {math.degrees(la.angle):.0f} deg is ignored (shadows are sharp)")
        if la.type in ("POINT", "SPOT") and float(getattr(la, "shadow_soft_size", 0.0)) > 0:
            pass  # the radius only softens shadows; Mitsuba's point and spot lights are points
        try:
            out.append(lights_mod.from_blender(la.type, energy, color, np.array(inst.matrix_world, np.float64),
                                               name=ob.name, blender_version=tuple(bpy.app.version), **kw))
        except backend().errors.MRDError as exc:
            notes.append(f"{where} is left out: {exc}")
    return out


def light_warning(env, lights) -> str | None:
    """A warning when nothing lights the object enough to see it (no lamp and a dim constant world)."""
    if lights or env.kind != "constant":
        return None
    level = max(env.color) * env.strength
    if level >= DIM_WORLD:
        return None
    return (f"nothing lights the target: no lamp and a dim world ({level:.2g}), so it renders almost black and the "
            "optimizer would chase noise: add a lamp (Add > Light) or brighten the world (World > Surface > Color "
            "/ Strength)")
