"""Blender objects and worlds -> `SceneSpec` (plain numpy; never mitsuba).

Callable without the operator, so a researcher can get the SceneSpec of any object:

    import bpy
    from mrd_blender_addon import export
    spec = export.scene_spec(bpy.data.objects["Suzanne"])          # views around the object
    result = export.export_target(obj, camera=bpy.context.scene.camera)  # the scene camera instead, plus notes
    result.spec, result.notes, result.vertex_map

Conventions (verified in shared/reference/blender-mitsuba-conventions.md): Blender's Z-up world frame throughout;
the evaluated depsgraph (modifiers applied) and the object transform baked into world-space vertices; Blender's own
loop triangles; the active-render UV map, with a vertex split wherever its corners' UVs differ (seams), Blender's v
kept (SceneSpec flips it for Mitsuba); images as linear float arrays with row 0 at the top; Principled roughness
unsquared; the world's Environment Texture image with its Mapping Z rotation and Background strength, or its colour
as a constant; the lamps (point, spot, sun, area) in Cycles' units (mrd_backend.lights). Everything that had to be approximated is said in `notes`.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import bpy
import numpy as np

from ..client import backend

LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)  # Blender's default (Rec.709) colour -> float weights
MAX_ENV_WIDTH = 4096      # larger environment images are box-filtered down (memory of the .npz and Mitsuba)
MAX_TEXTURE_SIZE = 4096   # larger material textures likewise
BLENDER_DEFAULT_GREY = 0.8


class ExportError(Exception):
    """Bad input for an export (no mesh, an unreadable image, ...): one line that says what to do."""


@dataclass
class Export:
    spec: object                     # mrd_backend.scene.SceneSpec
    notes: list = field(default_factory=list)       # approximations (shown as info)
    warnings: list = field(default_factory=list)    # things the user probably wants to fix (shown as warnings)
    vertex_map: np.ndarray | None = None            # spec vertex -> Blender (evaluated) vertex index


# -- helpers --------------------------------------------------------------------------------------------------
def _get(collection, attr, width, dtype=np.float32):
    out = np.empty(len(collection) * width, dtype)
    collection.foreach_get(attr, out)
    return out.reshape(-1, width) if width > 1 else out


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _box_down(img: np.ndarray, max_width: int) -> tuple[np.ndarray, int]:
    factor = 1
    while img.shape[1] // factor > max_width:
        factor *= 2
    if factor == 1:
        return img, 1
    h, w = (img.shape[0] // factor) * factor, (img.shape[1] // factor) * factor
    small = img[:h, :w].reshape(h // factor, factor, w // factor, factor, -1).mean((1, 3))
    return small.astype(np.float32), factor


def depsgraph_for(context=None):
    context = context or bpy.context
    return context.evaluated_depsgraph_get()


# -- mesh -----------------------------------------------------------------------------------------------------
def mesh_arrays(obj, depsgraph=None, split_uv_seams: bool = True) -> dict:
    """World-space triangle mesh of `obj` as evaluated (modifiers applied).

    Returns vertices (V, 3) float32, faces (F, 3) int32, uvs (V, 2) or None, normals (V, 3) or None (only when
    every face is smooth-shaded; flat faces make Mitsuba use face normals, as Cycles shades them), vertex_map (V,)
    Blender vertex of each vertex, and counts: blender_vertices, loose_vertices, smooth (all/none/mixed)."""
    if obj is None:
        raise ExportError("nothing to export: select a mesh object (or set the target in the MRD panel)")
    if obj.type != "MESH":
        raise ExportError(f"{obj.name!r} is a {obj.type.lower()} object, not a mesh: select a mesh, or convert it "
                          "with Object > Convert > Mesh")
    depsgraph = depsgraph or depsgraph_for()
    eo = obj.evaluated_get(depsgraph)
    me = eo.to_mesh()
    try:
        if me is None or len(me.vertices) == 0:
            raise ExportError(f"{obj.name!r} has an empty mesh: give it some faces (or select another object)")
        me.calc_loop_triangles()
        if len(me.loop_triangles) == 0:
            raise ExportError(f"{obj.name!r} has {len(me.vertices)} vertices but no faces: the optimizer needs a "
                              "surface (fill it with faces, e.g. Edit Mode > F)")
        co = _get(me.vertices, "co", 3)
        tri_v = _get(me.loop_triangles, "vertices", 3, np.int32)
        tri_l = _get(me.loop_triangles, "loops", 3, np.int32)
        tri_p = _get(me.loop_triangles, "polygon_index", 1, np.int32)
        smooth = _get(me.polygons, "use_smooth", 1, bool) if len(me.polygons) else np.zeros(0, bool)
        vnormals = _get(me.vertices, "normal", 3)
        uv_layer = None
        for layer in me.uv_layers:
            if layer.active_render:
                uv_layer = layer
        uv_layer = uv_layer or me.uv_layers.active
        corner_uv = _get(uv_layer.data, "uv", 2) if uv_layer is not None and len(me.loops) else None
        n_blender = len(me.vertices)
        matrix = np.array(eo.matrix_world, np.float64)
    finally:
        eo.to_mesh_clear()

    used_smooth = smooth[tri_p] if len(smooth) else np.zeros(len(tri_p), bool)
    smooth_kind = "all" if used_smooth.all() else ("none" if not used_smooth.any() else "mixed")
    # Bake the transform; normals with the inverse transpose; a mirroring transform flips the winding back.
    lin = matrix[:3, :3]
    world = (co.astype(np.float64) @ lin.T + matrix[:3, 3]).astype(np.float32)
    nrm = vnormals.astype(np.float64) @ np.linalg.inv(lin)  # rows: n^T M^-1 == (M^-T n)^T
    nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
    if np.linalg.det(lin) < 0:
        tri_v, tri_l = tri_v[:, ::-1].copy(), tri_l[:, ::-1].copy()

    used = np.unique(tri_v)
    if corner_uv is not None and split_uv_seams:
        corners = tri_l.ravel()
        vi = tri_v.ravel().astype(np.int64)
        uvc = np.ascontiguousarray(corner_uv[corners], np.float32)
        key = np.stack([vi, uvc[:, 0].view(np.int32).astype(np.int64), uvc[:, 1].view(np.int32).astype(np.int64)], 1)
        uniq, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
        vertex_map = uniq[:, 0].astype(np.int32)
        uvs = uvc[first]
        faces = inverse.reshape(-1, 3).astype(np.int32)
    else:
        remap = np.full(n_blender, -1, np.int64)
        remap[used] = np.arange(len(used))
        vertex_map = used.astype(np.int32)
        faces = remap[tri_v].astype(np.int32)
        uvs = None
        if corner_uv is not None:  # welded: one UV per vertex (the last corner's), fine for seamless maps
            uvs = np.zeros((len(used), 2), np.float32)
            uvs[faces.ravel()] = corner_uv[tri_l.ravel()]
    return {"vertices": world[vertex_map], "faces": faces, "uvs": uvs,
            "normals": nrm[vertex_map].astype(np.float32) if smooth_kind == "all" else None,
            "vertex_map": vertex_map, "blender_vertices": n_blender, "loose_vertices": int(n_blender - len(used)),
            "smooth": smooth_kind, "uv_layer": uv_layer_name(obj), "welded_faces": tri_v}


def uv_layer_name(obj):
    layers = obj.data.uv_layers if obj and obj.type == "MESH" else []
    for layer in layers:
        if layer.active_render:
            return layer.name
    return None


def start_mesh(obj, depsgraph=None) -> tuple[np.ndarray, np.ndarray]:
    """A start shape for a shape run: welded (no UV split), world space, and checked to be a closed manifold,
    which Large Steps and remeshing need."""
    m = mesh_arrays(obj, depsgraph, split_uv_seams=False)
    problems = backend().meshes.manifold_problems(m["vertices"], m["faces"])
    if m["loose_vertices"]:
        problems = ", ".join(p for p in (problems, f"{m['loose_vertices']} loose vertices") if p)
    if problems:
        raise ExportError(f"start mesh {obj.name!r} is not a closed manifold ({problems}): the shape optimizer "
                          "needs one; in Edit Mode use Mesh > Clean Up > Merge by Distance / Delete Loose and fill "
                          "holes, or start from the icosphere")
    return m["vertices"], m["faces"]


# -- images ---------------------------------------------------------------------------------------------------
def _image_path(image) -> str:
    try:
        return bpy.path.abspath(image.filepath, library=image.library)
    except TypeError:  # very old signature
        return bpy.path.abspath(image.filepath)


def image_array(image, where: str, max_size: int = MAX_TEXTURE_SIZE, notes: list | None = None) -> np.ndarray:
    """An image's pixels as linear float32 (H, W, C>=3), row 0 at the top. Raises ExportError when it cannot be
    read (a missing file), naming where it is used."""
    if image is None:
        raise ExportError(f"{where} has no image: open one in the node or remove the node")
    if image.source in ("FILE", "SEQUENCE", "TILED") and image.packed_file is None:
        path = _image_path(image)
        if not os.path.isfile(path):
            raise ExportError(f"image {image.name!r} used by {where} is missing (file {path!r}): relink it "
                              "(File > External Data > Find Missing Files) or remove the node")
    w, h = image.size[:]
    ch = image.channels
    if w == 0 or h == 0 or ch == 0:
        raise ExportError(f"image {image.name!r} used by {where} cannot be read (size {w}x{h}): check the file")
    px = np.empty(w * h * ch, np.float32)
    image.pixels.foreach_get(px)
    img = px.reshape(h, w, ch)[::-1]  # Blender stores the bottom row first
    if ch == 1:
        img = np.repeat(img, 3, 2)
    elif ch == 2:
        img = np.concatenate([img[..., :1]] * 3, 2)
    img = np.ascontiguousarray(img[..., :3])
    space = image.colorspace_settings.name
    if not image.is_float:
        if space in ("sRGB",):
            img = srgb_to_linear(img)
        elif space not in ("Non-Color", "Raw", "Linear", "Linear Rec.709", "Generic Data"):
            img = srgb_to_linear(img)
            if notes is not None:
                notes.append(f"{where}: image {image.name!r} is in colour space {space!r}, read as sRGB")
    img, factor = _box_down(img, max_size)
    if factor > 1 and notes is not None:
        notes.append(f"{where}: image {image.name!r} ({w}x{h}) reduced {factor}x to {img.shape[1]}x{img.shape[0]}")
    return np.ascontiguousarray(img, np.float32)


# -- material -------------------------------------------------------------------------------------------------
def _output_node(tree, kind):
    outs = [n for n in tree.nodes if n.bl_idname == kind]
    for n in outs:
        if getattr(n, "is_active_output", False) and getattr(n, "target", "ALL") in ("ALL", "CYCLES"):
            return n
    return outs[0] if outs else None


def _linked_node(socket):
    if socket is None or not socket.is_linked:
        return None
    link = socket.links[0]
    node = link.from_node
    while node is not None and node.bl_idname == "NodeReroute":
        node = node.inputs[0].links[0].from_node if node.inputs[0].is_linked else None
    return node


def _input(node, *names):
    for n in names:
        s = node.inputs.get(n)
        if s is not None:
            return s
    return None


def _socket_value(node, names, where, notes, fallback, kind, image_ok=True):
    """An unlinked socket's value, or a direct Image Texture's pixels, or the fallback (with a note)."""
    s = _input(node, *names)
    if s is None:
        return fallback
    src = _linked_node(s)
    if src is None:
        v = s.default_value
        return tuple(float(x) for x in v[:3]) if kind == "rgb" else float(v)
    label = f"{where} {names[0]}"
    if src.bl_idname == "ShaderNodeTexImage" and image_ok:
        vec = _input(src, "Vector")
        if vec is not None and vec.is_linked:
            vsrc = _linked_node(vec)
            ok = vsrc is not None and (vsrc.bl_idname == "ShaderNodeUVMap" or (
                vsrc.bl_idname == "ShaderNodeTexCoord" and vec.links[0].from_socket.name == "UV"))
            if not ok:
                notes.append(f"{label}: the texture's {vsrc.bl_idname if vsrc else 'vector'} mapping is ignored "
                             "(the active UV map is used)")
        if getattr(src, "projection", "FLAT") != "FLAT":
            notes.append(f"{label}: {src.projection.lower()} projection is treated as flat (UV)")
        img = image_array(src.image, f"{label} (node {src.name!r})", notes=notes)
        if kind == "rgb":
            return img
        return np.ascontiguousarray((img @ LUMA)[..., None], np.float32)
    notes.append(f"{label} comes from a {src.bl_idname.replace('ShaderNode', '')} node that cannot be exported: "
                 f"used the material's viewport value instead")
    return fallback


def material_spec(obj, notes: list | None = None):
    """The object's first material as an mrd Material: Principled BSDF values and image textures (base color,
    roughness, metallic; IOR/specular level as `specular`), a Diffuse BSDF's colour, else the viewport colour."""
    Material = backend().scene.Material
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
    out = _output_node(tree, "ShaderNodeOutputMaterial") if tree is not None else None
    shader = _linked_node(_input(out, "Surface")) if out is not None else None
    where = f"material {mat.name!r}"
    if shader is None:
        notes.append(f"{where} has no node surface: used its viewport colour, roughness and metallic")
        viewport.notes = list(notes)
        return viewport
    if shader.bl_idname == "ShaderNodeBsdfDiffuse":
        color = _socket_value(shader, ["Color"], where, notes, viewport_rgb, "rgb")
        m = Material("diffuse", color, twosided=True)
    elif shader.bl_idname == "ShaderNodeBsdfPrincipled":
        color = _socket_value(shader, ["Base Color"], where, notes, viewport_rgb, "rgb")
        params = {"roughness": _socket_value(shader, ["Roughness"], where, notes, float(mat.roughness), "float"),
                  "metallic": _socket_value(shader, ["Metallic"], where, notes, float(mat.metallic), "float")}
        level = _input(shader, "Specular IOR Level")
        if level is not None:  # Blender 4.0+: F0 = ((ior-1)/(ior+1))^2 * 2 level; Mitsuba: F0 = 0.08 specular
            ior = _input(shader, "IOR")
            ior_v = float(ior.default_value) if ior is not None and not ior.is_linked else 1.5
            lvl = float(level.default_value) if not level.is_linked else 0.5
            f0 = ((ior_v - 1) / (ior_v + 1)) ** 2 * 2 * lvl
            params["specular"] = max(f0 / 0.08, 1e-3)
            if level.is_linked or (ior is not None and ior.is_linked):
                notes.append(f"{where}: a linked IOR / Specular IOR Level is replaced by its default")
        else:
            spec = _input(shader, "Specular")
            if spec is not None:
                params["specular"] = max(float(spec.default_value), 1e-3)
        trans = _input(shader, "Transmission Weight", "Transmission")
        ignored = []
        if trans is not None and (trans.is_linked or float(trans.default_value) > 0):
            ignored.append("transmission")
        for label, names in (("coat", ("Coat Weight", "Clearcoat")), ("sheen", ("Sheen Weight", "Sheen")),
                             ("subsurface", ("Subsurface Weight", "Subsurface")),
                             ("emission", ("Emission Strength",)), ("anisotropy", ("Anisotropic",))):
            s = _input(shader, *names)
            if s is not None and (s.is_linked or float(s.default_value) > 0):
                if label == "emission":
                    col = _input(shader, "Emission Color", "Emission")
                    if col is not None and not col.is_linked and max(col.default_value[:3]) == 0:
                        continue
                ignored.append(label)
        normal = _input(shader, "Normal")
        if normal is not None and normal.is_linked:
            ignored.append("normal/bump map")
        alpha = _input(shader, "Alpha")
        if alpha is not None and (alpha.is_linked or float(alpha.default_value) < 1):
            ignored.append("alpha")
        if ignored:
            notes.append(f"{where}: {', '.join(ignored)} not exported (Mitsuba's principled BSDF without them)")
        m = Material("principled", color, params, twosided=True)
    else:
        notes.append(f"{where}: surface shader {shader.bl_idname.replace('ShaderNode', '')} is not a Principled or "
                     "Diffuse BSDF: used the material's viewport colour, roughness and metallic")
        m = viewport
    m.notes = list(notes)
    return m


# -- world ----------------------------------------------------------------------------------------------------
def environment_spec(world, notes: list | None = None):
    """The world as an mrd Environment: an Environment Texture image (with its Mapping Z rotation and the
    Background strength), or the background colour times strength as a constant."""
    Environment = backend().environment.Environment
    notes = [] if notes is None else notes
    if world is None:
        notes.append("the scene has no world, so nothing lights the object (Cycles renders it black): add a world")
        return Environment("constant", color=(0.0, 0.0, 0.0), name="none")
    tree = world.node_tree if getattr(world, "use_nodes", True) else None
    out = _output_node(tree, "ShaderNodeOutputWorld") if tree is not None else None
    surf = _linked_node(_input(out, "Surface")) if out is not None else None
    base = tuple(float(c) for c in world.color[:3])
    if surf is None:
        notes.append(f"world {world.name!r} uses no nodes: lit by its colour {_rgb(base)} as a constant")
        return Environment("constant", color=base, name=world.name)
    strength = 1.0
    if surf.bl_idname in ("ShaderNodeBackground", "ShaderNodeEmission"):
        s = _input(surf, "Strength")
        if s is not None:
            if s.is_linked:
                notes.append(f"world {world.name!r}: a linked Strength is not exported (used 1.0)")
            else:
                strength = float(s.default_value)
        color_socket = _input(surf, "Color")
        src = _linked_node(color_socket)
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
    vec = _input(env_node, "Vector")
    src = _linked_node(vec)
    if src is None:
        return 0.0
    if src.bl_idname != "ShaderNodeMapping":
        if not (src.bl_idname == "ShaderNodeTexCoord" and vec.links[0].from_socket.name == "Generated"):
            notes.append(f"{where}: its {src.bl_idname.replace('ShaderNode', '')} vector input is ignored")
        return 0.0
    kind = getattr(src, "vector_type", "POINT")
    rot_socket = _input(src, "Rotation")
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
    loc = _input(src, "Location")
    if kind == "POINT" and loc is not None and not loc.is_linked and max(abs(x) for x in loc.default_value) > 1e-6:
        notes.append(f"{where}: Mapping location is ignored")
    scale = _input(src, "Scale")
    if scale is not None and not scale.is_linked and max(abs(x - 1) for x in scale.default_value) > 1e-6:
        notes.append(f"{where}: Mapping scale is ignored")
    if kind not in ("POINT", "TEXTURE"):
        notes.append(f"{where}: Mapping type {kind} is ignored")
        return 0.0
    deg = math.degrees(rot[2])
    return -deg if kind == "POINT" else deg


def _rgb(c):
    return "(" + ", ".join(f"{x:.3g}" for x in c) + ")"


# -- lamps ----------------------------------------------------------------------------------------------------
DIM_WORLD = 0.2   # a constant world below this (colour x strength) and no lamp: the object renders almost black


def lights_spec(depsgraph, notes: list | None = None) -> list:
    """Every lamp that renders (visible, power above 0) as mrd Lights, converted as Cycles lights them."""
    lights_mod = backend().lights
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


# -- cameras --------------------------------------------------------------------------------------------------
def camera_rig(camera_obj=None, scene=None, views: int = 8, width: int = 128, height: int = 128,
               fov: float = 45.0, notes: list | None = None):
    """A CameraRig: `views` lattice views around the object (up +Z), or exactly the Blender camera given."""
    cams = backend().cameras
    if camera_obj is None:
        return cams.CameraRig(n_views=views, fov=fov, width=width, height=height)
    if camera_obj.type != "CAMERA":
        raise ExportError(f"{camera_obj.name!r} is not a camera")
    cam = camera_obj.data
    notes = [] if notes is None else notes
    if cam.type != "PERSP":
        notes.append(f"camera {camera_obj.name!r} is {cam.type.lower()}: exported as perspective")
    if abs(cam.shift_x) > 1e-6 or abs(cam.shift_y) > 1e-6:
        notes.append(f"camera {camera_obj.name!r}: lens shift is ignored")
    fit = cam.sensor_fit
    if fit == "AUTO":
        fit = "HORIZONTAL" if width >= height else "VERTICAL"
        sensor = cam.sensor_width
    else:
        sensor = cam.sensor_width if fit == "HORIZONTAL" else cam.sensor_height
    half = math.atan(sensor / (2 * cam.lens))
    fov_x = 2 * half if fit == "HORIZONTAL" else 2 * math.atan(math.tan(half) * width / height)
    m = cams.blender_camera_to_world(np.array(camera_obj.matrix_world, np.float64))
    return cams.CameraRig(n_views=1, fov=math.degrees(fov_x), width=width, height=height, matrices=[m.tolist()])


# -- the whole target -----------------------------------------------------------------------------------------
def export_target(obj, context=None, *, depsgraph=None, world=None, camera=None, views: int = 8,
                  width: int = 128, height: int = 128, fov: float = 45.0, name: str | None = None) -> Export:
    """`obj` (mesh, material) under `world` (default: the scene's) as a SceneSpec, with notes and warnings."""
    b = backend()
    context = context or bpy.context
    depsgraph = depsgraph or depsgraph_for(context)
    scene = context.scene
    m = mesh_arrays(obj, depsgraph)
    notes, warnings = [], []
    if m["loose_vertices"]:
        warnings.append(f"{obj.name!r} has {m['loose_vertices']} loose vertices (not in any face): left out")
    # Welded topology (UV seams are not holes); loose vertices were already reported.
    problems = b.meshes.manifold_problems(np.zeros((m["blender_vertices"], 3)), m["welded_faces"])
    problems = ", ".join(p for p in problems.split(", ") if p and "loose" not in p)
    if problems:
        warnings.append(f"{obj.name!r} is not a closed manifold ({problems}): fine, a target is only rendered "
                        "(a shape metamer starts from a closed mesh of its own)")
    if m["smooth"] == "mixed":
        notes.append(f"{obj.name!r} mixes smooth and flat faces: rendered with flat (face) normals")
    if m["uvs"] is None:
        notes.append(f"{obj.name!r} has no UV map: image textures cannot be placed (uniform values only)")
    material = material_spec(obj, [])
    notes += material.notes
    if m["uvs"] is None and any(isinstance(v, np.ndarray) for v in [material.base_color, *material.params.values()]):
        raise ExportError(f"{obj.name!r} has image textures but no UV map: add one (Edit Mode > UV > Unwrap)")
    world = scene.world if world is None else world
    env = environment_spec(world, notes)
    lights = lights_spec(depsgraph, notes)
    dark = light_warning(env, lights)
    if dark:
        warnings.append(dark)
    rig = camera_rig(camera, scene, views, width, height, fov, notes)
    spec = b.scene.SceneSpec(m["vertices"], m["faces"], m["uvs"], m["normals"], material, env, rig,
                             name=name or obj.name, lights=lights)
    return Export(spec, list(dict.fromkeys(notes)), warnings, m["vertex_map"])


def scene_spec(obj, context=None, **kw):
    """Just the SceneSpec of `obj` (see export_target for the options)."""
    return export_target(obj, context, **kw).spec
