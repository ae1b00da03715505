"""The target's first material -> an mrd Material: Principled BSDF values and image textures, a Diffuse BSDF's
colour, else the viewport colour; everything approximated goes into `notes`."""
from __future__ import annotations

import numpy as np

from ..bpy_arrays import input_socket, linked_node, output_node
from ..client import backend
from ..principled import SOCKETS, specular_from_level
from .images import image_array

LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)  # Blender's default (Rec.709) colour -> float weights
BLENDER_DEFAULT_GREY = 0.8
# Principled features Mitsuba's principled BSDF is exported without: (label, socket names 4.x first, then 3.x)
IGNORED_FEATURES = (("coat", SOCKETS["clearcoat"]), ("sheen", SOCKETS["sheen"]),
                    ("subsurface", ("Subsurface Weight", "Subsurface")), ("emission", ("Emission Strength",)),
                    ("anisotropy", SOCKETS["anisotropic"]))


def _texture_mapping_notes(src, label, notes):
    """Notes for an Image Texture whose vector input or projection is not the plain UV lookup."""
    vec = input_socket(src, "Vector")
    if vec is not None and vec.is_linked:
        vsrc = linked_node(vec)
        ok = vsrc is not None and (vsrc.bl_idname == "ShaderNodeUVMap" or (
            vsrc.bl_idname == "ShaderNodeTexCoord" and vec.links[0].from_socket.name == "UV"))
        if not ok:
            notes.append(f"{label}: the texture's {vsrc.bl_idname if vsrc else 'vector'} mapping is ignored "
                         "(the active UV map is used)")
    if getattr(src, "projection", "FLAT") != "FLAT":
        notes.append(f"{label}: {src.projection.lower()} projection is treated as flat (UV)")


def _socket_value(node, names, where, notes, fallback, kind, image_ok=True):
    """An unlinked socket's value, or a direct Image Texture's pixels, or the fallback (with a note)."""
    s = input_socket(node, *names)
    if s is None:
        return fallback
    src = linked_node(s)
    if src is None:
        v = s.default_value
        return tuple(float(x) for x in v[:3]) if kind == "rgb" else float(v)
    label = f"{where} {names[0]}"
    if src.bl_idname == "ShaderNodeTexImage" and image_ok:
        _texture_mapping_notes(src, label, notes)
        img = image_array(src.image, f"{label} (node {src.name!r})", notes=notes)
        if kind == "rgb":
            return img
        return np.ascontiguousarray((img @ LUMA)[..., None], np.float32)
    notes.append(f"{label} comes from a {src.bl_idname.replace('ShaderNode', '')} node that cannot be exported: "
                 f"used the material's viewport value instead")
    return fallback


def _specular(shader, where, notes) -> float | None:
    """Mitsuba's `specular` from Blender 4's IOR and Specular IOR Level, or from 3.x's Specular socket."""
    level = input_socket(shader, "Specular IOR Level")
    if level is None:
        spec = input_socket(shader, "Specular")
        return max(float(spec.default_value), 1e-3) if spec is not None else None
    ior = input_socket(shader, "IOR")
    ior_v = float(ior.default_value) if ior is not None and not ior.is_linked else 1.5
    lvl = float(level.default_value) if not level.is_linked else 0.5
    if level.is_linked or (ior is not None and ior.is_linked):
        notes.append(f"{where}: a linked IOR / Specular IOR Level is replaced by its default")
    return specular_from_level(ior_v, lvl)


def _used(socket) -> bool:
    return socket is not None and (socket.is_linked or float(socket.default_value) > 0)


def _ignored_features(shader) -> list[str]:
    """The Principled features in use that the export leaves out."""
    ignored = ["transmission"] if _used(input_socket(shader, *SOCKETS["spec_trans"])) else []
    for label, names in IGNORED_FEATURES:
        if _used(input_socket(shader, *names)):
            if label == "emission":
                col = input_socket(shader, "Emission Color", "Emission")
                if col is not None and not col.is_linked and max(col.default_value[:3]) == 0:
                    continue
            ignored.append(label)
    normal = input_socket(shader, "Normal")
    if normal is not None and normal.is_linked:
        ignored.append("normal/bump map")
    alpha = input_socket(shader, "Alpha")
    if alpha is not None and (alpha.is_linked or float(alpha.default_value) < 1):
        ignored.append("alpha")
    return ignored


def _principled(shader, mat, where, notes, viewport_rgb):
    color = _socket_value(shader, ["Base Color"], where, notes, viewport_rgb, "rgb")
    params = {"roughness": _socket_value(shader, ["Roughness"], where, notes, float(mat.roughness), "float"),
              "metallic": _socket_value(shader, ["Metallic"], where, notes, float(mat.metallic), "float")}
    specular = _specular(shader, where, notes)
    if specular is not None:
        params["specular"] = specular
    ignored = _ignored_features(shader)
    if ignored:
        notes.append(f"{where}: {', '.join(ignored)} not exported (Mitsuba's principled BSDF without them)")
    return backend().scene.spec.Material("principled", color, params, twosided=True)


def material_spec(obj, notes: list | None = None):
    """The object's first material as an mrd Material: Principled BSDF values and image textures (base color,
    roughness, metallic; IOR/specular level as `specular`), a Diffuse BSDF's colour, else the viewport colour."""
    Material = backend().scene.spec.Material
    notes = [] if notes is None else notes
    slots = [s.material for s in obj.material_slots if s.material is not None] if obj else []
    if not slots:
        notes.append(f"{obj.name!r} has no material: rendered as Blender's default grey diffuse")
        return Material("diffuse", (BLENDER_DEFAULT_GREY,) * 3, twosided=True, notes=list(notes))
    mat = slots[0]
    if len(slots) > 1:
        notes.append(f"{obj.name!r} has {len(slots)} materials: only the first, {mat.name!r}, is exported")
    viewport_rgb = tuple(float(x) for x in mat.diffuse_color[:3])
    viewport = Material("principled", viewport_rgb,
                        {"roughness": float(mat.roughness), "metallic": float(mat.metallic)}, twosided=True)
    tree = mat.node_tree if getattr(mat, "use_nodes", True) else None
    out = output_node(tree, "ShaderNodeOutputMaterial") if tree is not None else None
    shader = linked_node(input_socket(out, "Surface")) if out is not None else None
    where = f"material {mat.name!r}"
    if shader is None:
        notes.append(f"{where} has no node surface: used its viewport colour, roughness and metallic")
        viewport.notes = list(notes)
        return viewport
    if shader.bl_idname == "ShaderNodeBsdfDiffuse":
        color = _socket_value(shader, ["Color"], where, notes, viewport_rgb, "rgb")
        m = Material("diffuse", color, twosided=True)
    elif shader.bl_idname == "ShaderNodeBsdfPrincipled":
        m = _principled(shader, mat, where, notes, viewport_rgb)
    else:
        notes.append(f"{where}: surface shader {shader.bl_idname.replace('ShaderNode', '')} is not a Principled or "
                     "Diffuse BSDF: used the material's viewport colour, roughness and metallic")
        m = viewport
    m.notes = list(notes)
    return m
