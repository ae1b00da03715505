"""Blender data <-> numpy arrays, shared by `export` (Blender -> SceneSpec) and `apply` (steps -> Blender).

Bulk `foreach_get`/`foreach_set` only, never per-element Python loops. Blender 3.5+ keeps positions and corner
vertices as generic attributes, whose foreach_get/set is a plain memory copy (about 0.1 ms for 100k vertices); the
MeshVertex/MeshLoop paths of older versions (still used on 3.4) are ~100x slower.
"""
from __future__ import annotations

import os
from pathlib import Path

import bpy
import numpy as np


def foreach_get(collection, attr: str, width: int = 1, dtype=np.float32) -> np.ndarray:
    """`collection`'s `attr` of every element as an (N, width) array ((N,) for width 1)."""
    out = np.empty(len(collection) * width, dtype)
    collection.foreach_get(attr, out)
    return out.reshape(-1, width) if width > 1 else out


def depsgraph_for(context=None):
    context = context or bpy.context
    return context.evaluated_depsgraph_get()


# -- node sockets ---------------------------------------------------------------------------------------------
def input_socket(node, *names):
    """The first of `names` that `node` has as an input (socket names differ between Blender versions)."""
    for n in names:
        s = node.inputs.get(n)
        if s is not None:
            return s
    return None


def output_node(tree, kind: str):
    """The active output node of `kind` for Cycles (or all engines), else the first of that kind."""
    outs = [n for n in tree.nodes if n.bl_idname == kind]
    for n in outs:
        if getattr(n, "is_active_output", False) and getattr(n, "target", "ALL") in ("ALL", "CYCLES"):
            return n
    return outs[0] if outs else None


def linked_node(socket):
    """The node feeding `socket`, through any reroutes (None when it is not linked)."""
    if socket is None or not socket.is_linked:
        return None
    node = socket.links[0].from_node
    while node is not None and node.bl_idname == "NodeReroute":
        node = node.inputs[0].links[0].from_node if node.inputs[0].is_linked else None
    return node


# -- meshes ---------------------------------------------------------------------------------------------------
def _positions(mesh):
    """(collection, attribute name) holding the vertex positions: the generic attribute when there is one."""
    a = mesh.attributes.get("position")
    if a is not None and a.data_type == "FLOAT_VECTOR" and a.domain == "POINT":
        return a.data, "vector"
    return mesh.vertices, "co"


def _corner_vertices(mesh):
    """(collection, attribute name) holding each corner's vertex index."""
    a = mesh.attributes.get(".corner_vert")
    if a is not None and a.domain == "CORNER":
        return a.data, "value"
    return mesh.loops, "vertex_index"


def mesh_vertices(mesh) -> np.ndarray:
    return foreach_get(*_positions(mesh), 3)


def mesh_faces(mesh) -> np.ndarray:
    """Corner vertex indices as (F, 3): the meshes this add-on writes are all triangles."""
    return foreach_get(*_corner_vertices(mesh), 1, np.int32).reshape(-1, 3)  # one value per corner


def same_topology(mesh, faces: np.ndarray) -> bool:
    if len(mesh.polygons) != len(faces) or len(mesh.loops) != 3 * len(faces):
        return False
    return np.array_equal(mesh_faces(mesh).ravel(), np.asarray(faces, np.int32).ravel())


def set_vertices(mesh, vertices: np.ndarray):
    """Moves the vertices (same topology): the cheap, per-step path."""
    data, attr = _positions(mesh)
    data.foreach_set(attr, np.ascontiguousarray(vertices, np.float32).ravel())
    mesh.update()


def set_mesh(mesh, vertices: np.ndarray, faces: np.ndarray | None = None, check: bool = True) -> bool:
    """Gives `mesh` these vertices (and faces, if they differ from its own: a remesh). True if topology changed.
    Works on Blender 3.4 (loop_total) through 5.x (offsets) alike: bulk foreach_set, no Python loops.
    check=False rebuilds without comparing (the caller knows the topology changed)."""
    v = np.ascontiguousarray(vertices, np.float32)
    if faces is None or (check and same_topology(mesh, faces)):
        if len(mesh.vertices) != len(v):
            raise ValueError(f"{len(v)} vertices for a mesh with {len(mesh.vertices)} and no faces given")
        set_vertices(mesh, v)
        return False
    f = np.ascontiguousarray(faces, np.int32)
    mesh.clear_geometry()
    mesh.vertices.add(len(v))
    mesh.loops.add(3 * len(f))
    mesh.polygons.add(len(f))
    data, attr = _positions(mesh)
    data.foreach_set(attr, v.ravel())
    data, attr = _corner_vertices(mesh)
    data.foreach_set(attr, f.ravel())
    mesh.polygons.foreach_set("loop_start", np.arange(0, 3 * len(f), 3, dtype=np.int32))
    if bpy.app.version < (3, 6, 0):  # polygons store their size until 3.6; later it follows from the offsets
        mesh.polygons.foreach_set("loop_total", np.full(len(f), 3, np.int32))
    mesh.update(calc_edges=True)
    return True


def evaluated_mesh(obj, depsgraph=None, uv: str = "render") -> dict | None:
    """The triangles of `obj` as evaluated (modifiers applied), the transform baked in; None for an empty mesh.

    Returns world (V, 3) float32 and normals (V, 3) float64 of every Blender vertex (normals with the inverse
    transpose, unit length), tri_v / tri_l (T, 3) vertex and corner of each triangle corner (winding flipped back
    under a mirroring transform), tri_p (T,) polygon, smooth (P,) bool, corner_uv (corners, 2) of the UV map
    (`uv`: "render" = the active-render map, else the active one) or None, n_vertices, mirrored."""
    depsgraph = depsgraph or depsgraph_for()
    eo = obj.evaluated_get(depsgraph)
    me = eo.to_mesh()
    try:
        if me is None or len(me.vertices) == 0:
            return None
        me.calc_loop_triangles()
        layer = me.uv_layers.active
        if uv == "render":
            layer = next((la for la in reversed(me.uv_layers) if la.active_render), None) or layer
        out = {"co": foreach_get(me.vertices, "co", 3),
               "tri_v": foreach_get(me.loop_triangles, "vertices", 3, np.int32),
               "tri_l": foreach_get(me.loop_triangles, "loops", 3, np.int32),
               "tri_p": foreach_get(me.loop_triangles, "polygon_index", 1, np.int32),
               "smooth": foreach_get(me.polygons, "use_smooth", 1, bool) if len(me.polygons) else np.zeros(0, bool),
               "vnormals": foreach_get(me.vertices, "normal", 3),
               "corner_uv": foreach_get(layer.data, "uv", 2) if layer is not None and len(me.loops) else None,
               "n_vertices": len(me.vertices)}
        matrix = np.array(eo.matrix_world, np.float64)
    finally:
        eo.to_mesh_clear()
    lin = matrix[:3, :3]
    out["world"] = (out.pop("co").astype(np.float64) @ lin.T + matrix[:3, 3]).astype(np.float32)
    nrm = out.pop("vnormals").astype(np.float64) @ np.linalg.inv(lin)  # rows: n^T M^-1 == (M^-T n)^T
    out["normals"] = nrm / np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
    out["mirrored"] = bool(np.linalg.det(lin) < 0)
    if out["mirrored"]:  # a mirroring transform flips the winding: flip it back
        out["tri_v"], out["tri_l"] = out["tri_v"][:, ::-1].copy(), out["tri_l"][:, ::-1].copy()
    return out


def weld(tri_v: np.ndarray, n_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """(used vertices, faces over them): the vertices some triangle uses, renumbered in order."""
    used = np.unique(tri_v)
    remap = np.full(n_vertices, -1, np.int64)
    remap[used] = np.arange(len(used))
    return used, remap[tri_v].astype(np.int32)


# -- shape keys -----------------------------------------------------------------------------------------------
def _key_points(key_block):
    return key_block.points if hasattr(key_block, "points") else key_block.data  # 4.x+ fast path, else the old one


def set_shape_key(key_block, vertices: np.ndarray):
    _key_points(key_block).foreach_set("co", np.ascontiguousarray(vertices, np.float32).ravel())


def shape_key_coords(key_block) -> np.ndarray:
    return foreach_get(_key_points(key_block), "co", 3)


# -- images ---------------------------------------------------------------------------------------------------
def image_pixels(image) -> np.ndarray:
    """An image's stored pixels as float32 (H, W, channels), row 0 at the top (Blender stores the bottom first)."""
    w, h = image.size[:]
    px = np.empty(w * h * image.channels, np.float32)
    image.pixels.foreach_get(px)
    return px.reshape(h, w, image.channels)[::-1]


def set_image(name: str, pixels: np.ndarray, float_buffer: bool, non_color: bool = False):
    """Creates or resizes image `name` and fills it. `pixels`: (H, W, C), row 0 at the top; float images take
    linear values, byte images (renders) uint8 sRGB values."""
    arr = np.asarray(pixels)
    h, w = arr.shape[:2]
    img = bpy.data.images.get(name)
    if img is not None and (tuple(img.size) != (w, h) or bool(img.is_float) != float_buffer):
        bpy.data.images.remove(img)
        img = None
    if img is None:
        img = bpy.data.images.new(name, w, h, alpha=False, float_buffer=float_buffer)
        if non_color:
            img.colorspace_settings.name = "Non-Color"
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    arr = np.asarray(arr, np.float32)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, 2)
    rgba = np.ones((h, w, 4), np.float32)
    rgba[..., :3] = arr[::-1, :, :3]  # Blender stores the bottom row first
    img.pixels.foreach_set(rgba.ravel())
    img.update()
    return img


def load_image(path: str | Path, name: str | None = None):
    """Loads (or reloads) an image file, e.g. a render of the run folder, for the Image Editor."""
    path = str(path)
    for img in bpy.data.images:
        if img.filepath and os.path.normpath(bpy.path.abspath(img.filepath)) == os.path.normpath(path):
            img.reload()
            return img
    img = bpy.data.images.load(path, check_existing=False)
    if name:
        img.name = name
    return img
