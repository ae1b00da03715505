"""The scene's world -> an mrd Environment: an Environment Texture image (with its Mapping Z rotation and the
Background strength), or a constant colour."""
from __future__ import annotations

import math
import os

from ..bpy_arrays import input_socket, linked_node, output_node
from ..client import backend
from .images import image_array

MAX_ENV_WIDTH = 4096      # larger environment images are box-filtered down (memory of the .npz and Mitsuba)


def environment_spec(world, notes: list | None = None):
    """The world as an mrd Environment: an Environment Texture image (with its Mapping Z rotation and the
    Background strength), or the background colour times strength as a constant."""
    Environment = backend().scene.environment.Environment
    notes = [] if notes is None else notes
    if world is None:
        notes.append("the scene has no world, so nothing lights the object (Cycles renders it black): add a world")
        return Environment("constant", color=(0.0, 0.0, 0.0), name="none")
    tree = world.node_tree if getattr(world, "use_nodes", True) else None
    out = output_node(tree, "ShaderNodeOutputWorld") if tree is not None else None
    surf = linked_node(input_socket(out, "Surface")) if out is not None else None
    base = tuple(float(c) for c in world.color[:3])
    if surf is None:
        notes.append(f"world {world.name!r} uses no nodes: lit by its colour {_rgb(base)} as a constant")
        return Environment("constant", color=base, name=world.name)
    strength = 1.0
    if surf.bl_idname in ("ShaderNodeBackground", "ShaderNodeEmission"):
        s = input_socket(surf, "Strength")
        if s is not None:
            if s.is_linked:
                notes.append(f"world {world.name!r}: a linked Strength is not exported (used 1.0)")
            else:
                strength = float(s.default_value)
        color_socket = input_socket(surf, "Color")
        src = linked_node(color_socket)
    elif surf.bl_idname == "ShaderNodeTexEnvironment":
        src = surf
    else:
        notes.append(f"world {world.name!r}: its surface is a {surf.bl_idname.replace('ShaderNode', '')} node, "
                     f"not a Background: lit by the world colour {_rgb(base)} as a constant")
        return Environment("constant", color=base, name=world.name)
    if src is None:
        color = tuple(float(c) for c in color_socket.default_value[:3])
        notes.append(f"world {world.name!r} has no Environment Texture: lit by a constant colour {_rgb(color)} "
                     f"x strength {strength:g}")
        return Environment("constant", color=color, strength=strength, name=world.name)
    if src.bl_idname != "ShaderNodeTexEnvironment":
        color = tuple(float(c) for c in color_socket.default_value[:3]) if color_socket is not None else base
        notes.append(f"world {world.name!r}: the background colour comes from a "
                     f"{src.bl_idname.replace('ShaderNode', '')} node that cannot be exported (only an Environment "
                     f"Texture can): lit by the socket's colour {_rgb(color)} as a constant")
        return Environment("constant", color=color, strength=strength, name=world.name)
    where = f"world {world.name!r} Environment Texture {src.name!r}"
    if getattr(src, "projection", "EQUIRECTANGULAR") != "EQUIRECTANGULAR":
        notes.append(f"{where}: {src.projection.lower()} projection is read as equirectangular")
    rotation_z = _mapping_rotation(src, where, notes)
    img = image_array(src.image, where, max_size=MAX_ENV_WIDTH, notes=notes)
    name = os.path.splitext(os.path.basename(src.image.filepath or src.image.name))[0] or src.image.name
    return Environment("array", array=img, strength=strength, rotation_z=rotation_z, name=name)


def _mapping_rotation(env_node, where, notes) -> float:
    """Z rotation in degrees of a Mapping node in front of the Environment Texture (0 without one).
    TEXTURE mapping rotates the lookup, so the envmap turns by +Z; POINT (Blender's default) by -Z."""
    vec = input_socket(env_node, "Vector")
    src = linked_node(vec)
    if src is None:
        return 0.0
    if src.bl_idname != "ShaderNodeMapping":
        if not (src.bl_idname == "ShaderNodeTexCoord" and vec.links[0].from_socket.name == "Generated"):
            notes.append(f"{where}: its {src.bl_idname.replace('ShaderNode', '')} vector input is ignored")
        return 0.0
    kind = getattr(src, "vector_type", "POINT")
    rot_socket = input_socket(src, "Rotation")
    if rot_socket is not None:
        if rot_socket.is_linked:
            notes.append(f"{where}: a linked Mapping rotation is ignored")
            rot = (0.0, 0.0, 0.0)
        else:
            rot = tuple(float(x) for x in rot_socket.default_value)
    else:  # pre-2.81 Mapping node
        rot = tuple(float(x) for x in getattr(src, "rotation", (0.0, 0.0, 0.0)))
    if abs(rot[0]) > 1e-6 or abs(rot[1]) > 1e-6:
        notes.append(f"{where}: Mapping rotation about X/Y is ignored (only Z is exported)")
    loc = input_socket(src, "Location")
    if kind == "POINT" and loc is not None and not loc.is_linked and max(abs(x) for x in loc.default_value) > 1e-6:
        notes.append(f"{where}: Mapping location is ignored")
    scale = input_socket(src, "Scale")
    if scale is not None and not scale.is_linked and max(abs(x - 1) for x in scale.default_value) > 1e-6:
        notes.append(f"{where}: Mapping scale is ignored")
    if kind not in ("POINT", "TEXTURE"):
        notes.append(f"{where}: Mapping type {kind} is ignored")
        return 0.0
    deg = math.degrees(rot[2])
    return -deg if kind == "POINT" else deg


def _rgb(c):
    return "(" + ", ".join(f"{x:.3g}" for x in c) + ")"
