"""A material run's result -> the result's Principled BSDF: float image textures linked to their sockets, and the
backend's uniform values written into the sockets (and kept as `mrd_<param>` custom properties)."""
from __future__ import annotations

import bpy
import numpy as np

from ..bpy_arrays import input_socket, set_image
from ..principled import COLOR_PARAMS, SOCKETS, ior_reflectance, level_from_specular


def result_material(name: str, target):
    """A new node material for the result, with the target's viewport colour."""
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    src = target.active_material
    if src is not None:
        mat.diffuse_color = src.diffuse_color
    return mat


def _principled(mat):
    if not mat.use_nodes:
        mat.use_nodes = True
    nodes = mat.node_tree.nodes
    bsdf = next((n for n in nodes if n.bl_idname == "ShaderNodeBsdfPrincipled"), None)
    return bsdf if bsdf is not None else nodes.new("ShaderNodeBsdfPrincipled")


def apply_textures(mat, prefix: str, textures: dict) -> list[str]:
    """Each texture as float image `<prefix> <param>`, linked to its socket (once). Returns the image names."""
    bsdf = _principled(mat)
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    names = []
    for key, arr in textures.items():
        img = set_image(f"{prefix} {key}", arr, float_buffer=True, non_color=key not in COLOR_PARAMS)
        names.append(img.name)
        socket = input_socket(bsdf, *SOCKETS.get(key, ()))
        if socket is None:
            continue
        node = nodes.get(f"mrd {key}")
        if node is None:
            node = nodes.new("ShaderNodeTexImage")
            node.name = node.label = f"mrd {key}"
            node.location = (bsdf.location.x - 350, bsdf.location.y - 280 * len(
                [n for n in nodes if n.name.startswith("mrd ")]))
        node.image = img
        if not socket.is_linked:
            links.new(node.outputs["Color"], socket)
    return names


def apply_values(mat, values: dict):
    """The backend's uniform values into the unlinked sockets; every value also kept as `mrd_<param>`."""
    bsdf = _principled(mat)
    base = values.get("base_color")
    base_rgb = list(base)[:3] if isinstance(base, (list, tuple)) and len(base) >= 3 else None
    for key, value in values.items():
        mat[f"mrd_{key}"] = value if value is not None else 0.0  # the backend's own value, always kept
        socket = input_socket(bsdf, *SOCKETS.get(key, ()))
        if socket is None or socket.is_linked or value is None:
            continue
        if key == "specular" and socket.name == "Specular IOR Level":
            ior = bsdf.inputs.get("IOR")
            value = level_from_specular(value, ior_reflectance(ior.default_value) if ior is not None else 0.04)
        _set_socket(socket, value, base_rgb if key.endswith("_tint") else None)


def _set_socket(socket, value, tint_of=None):
    """Sets a socket from a backend value: a float, or an RGB list. A scalar tint (Mitsuba: the fraction of the
    base colour) on a colour socket (Blender 4+) becomes white blended toward `tint_of`."""
    current = socket.default_value
    n = len(current) if hasattr(current, "__len__") else 0
    if n == 0:
        socket.default_value = float(np.mean(value)) if isinstance(value, (list, tuple)) else float(value)
        return
    if isinstance(value, (list, tuple)):
        vals = [float(x) for x in value][:n]
    else:
        t = float(value)
        rgb = [1.0 - t + t * c for c in tint_of] if tint_of is not None else [t] * 3
        vals = rgb[:n]
    socket.default_value = vals + [1.0] * (n - len(vals))
