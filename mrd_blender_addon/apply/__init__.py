"""Step results -> Blender: a result object next to the target that updates live, the step history for scrubbing
on the timeline, and (material runs) image textures and material values.

Layout of what a run creates (all named after the target, e.g. "Suzanne"):
- object + mesh "Suzanne.metamer": the latest step while the run goes, the final result afterwards: an ordinary
  mesh (no shape keys) with its material, placed next to the target (same world frame, shifted along X);
- collection "Suzanne.metamer steps" (hidden until you show it) with one object per mesh topology: the start
  shape and each remesh start a new one. Each holds the logged steps of its topology as shape keys ("step 000012"),
  keyed so that frame `frame_start + step` shows that step, and its visibility is keyed to its span of steps:
  scrub the timeline to replay the optimization;
- image "Suzanne.metamer render": the backend's latest render of view 0;
- material runs: material "Suzanne.metamer" (Principled BSDF) with float images "Suzanne.metamer <param>".

Nothing here keeps a bpy reference between calls (undo and file loads invalidate them). A run's objects and its
steps collection carry its identity as custom properties (`mrd_run_id`, `mrd_role`: result | steps, `mrd_segment`),
so they are found again after an undo or a rename; an undo during a run that removed them (or rewound their history)
is repaired from the step files in the run folder (`restore`).
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import bpy
import numpy as np

SUFFIX = ".metamer"
STEP_KEY = "step {:06d}"
# Backend material parameter -> Principled BSDF socket names (4.x first, then 3.x).
SOCKETS = {"base_color": ("Base Color",), "roughness": ("Roughness",), "metallic": ("Metallic",),
           "specular": ("Specular IOR Level", "Specular"), "spec_tint": ("Specular Tint",),
           "anisotropic": ("Anisotropic",), "sheen": ("Sheen Weight", "Sheen"), "sheen_tint": ("Sheen Tint",),
           "clearcoat": ("Coat Weight", "Clearcoat"), "spec_trans": ("Transmission Weight", "Transmission"),
           "eta": ("IOR",)}
COLOR_PARAMS = {"base_color"}


# -- meshes ---------------------------------------------------------------------------------------------------
# Blender 3.5+ keeps positions and corner vertices as generic attributes, whose foreach_get/set is a plain memory
# copy (about 0.1 ms for 100k vertices); the MeshVertex/MeshLoop paths of older versions are ~100x slower.
def _position(mesh):
    a = mesh.attributes.get("position")
    return a if a is not None and a.data_type == "FLOAT_VECTOR" and a.domain == "POINT" else None


def _corner_vert(mesh):
    a = mesh.attributes.get(".corner_vert")
    return a if a is not None and a.domain == "CORNER" else None


def same_topology(mesh, faces: np.ndarray) -> bool:
    if len(mesh.polygons) != len(faces) or len(mesh.loops) != 3 * len(faces):
        return False
    return np.array_equal(mesh_faces(mesh).ravel(), np.asarray(faces, np.int32).ravel())


def set_vertices(mesh, vertices: np.ndarray):
    """Moves the vertices (same topology): the cheap, per-step path."""
    flat = np.ascontiguousarray(vertices, np.float32).ravel()
    pos = _position(mesh)
    if pos is not None:
        pos.data.foreach_set("vector", flat)
    else:
        mesh.vertices.foreach_set("co", flat)
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
    pos = _position(mesh)
    if pos is not None:
        pos.data.foreach_set("vector", v.ravel())
    else:
        mesh.vertices.foreach_set("co", v.ravel())
    cv = _corner_vert(mesh)
    if cv is not None:
        cv.data.foreach_set("value", f.ravel())
    else:
        mesh.loops.foreach_set("vertex_index", f.ravel())
    mesh.polygons.foreach_set("loop_start", np.arange(0, 3 * len(f), 3, dtype=np.int32))
    if bpy.app.version < (3, 6, 0):  # polygons store their size until 3.6; later it follows from the offsets
        mesh.polygons.foreach_set("loop_total", np.full(len(f), 3, np.int32))
    mesh.update(calc_edges=True)
    return True


def mesh_vertices(mesh) -> np.ndarray:
    out = np.empty(len(mesh.vertices) * 3, np.float32)
    pos = _position(mesh)
    if pos is not None:
        pos.data.foreach_get("vector", out)
    else:
        mesh.vertices.foreach_get("co", out)
    return out.reshape(-1, 3)


def mesh_faces(mesh) -> np.ndarray:
    out = np.empty(len(mesh.loops), np.int32)
    cv = _corner_vert(mesh)
    if cv is not None:
        cv.data.foreach_get("value", out)
    else:
        mesh.loops.foreach_get("vertex_index", out)
    return out.reshape(-1, 3)


def set_shape_key(key_block, vertices: np.ndarray):
    """A shape key's coordinates (ShapeKey.points is the fast path of Blender 4.x+, data the older one)."""
    flat = np.ascontiguousarray(vertices, np.float32).ravel()
    (key_block.points if hasattr(key_block, "points") else key_block.data).foreach_set("co", flat)


def shape_key_coords(key_block) -> np.ndarray:
    pts = key_block.points if hasattr(key_block, "points") else key_block.data
    out = np.empty(len(pts) * 3, np.float32)
    pts.foreach_get("co", out)
    return out.reshape(-1, 3)


# -- images ---------------------------------------------------------------------------------------------------
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


# -- the writer -----------------------------------------------------------------------------------------------
def result_name(target_name: str) -> str:
    return target_name + SUFFIX


class ResultWriter:
    """Applies one run's steps. Holds names and plain numbers only."""

    def __init__(self, target, mode: str, run_dir: str | Path, keep_every: int = 10, scene=None,
                 offset: tuple | None = None, name: str | None = None):
        scene = scene or bpy.context.scene
        self.scene_name = scene.name
        self.target_name = target.name
        self.mode = mode
        self.run_dir = str(run_dir)
        self.keep_every = max(1, int(keep_every))
        self.frame0 = int(scene.frame_start)
        self.name = name or self._free_name(result_name(target.name))
        self.steps_name = self.name + " steps"
        self.offset = tuple(offset) if offset is not None else self._offset(target)
        self.faces: dict[int, np.ndarray] = {}      # topology id -> faces
        self.segments: list[dict] = []               # {"object": name, "topology": id, "first": step, "last": step}
        self.kept: list[int] = []
        self.history: list[tuple] = []               # (step, topology, step file) of every kept step, for restore
        self.run_id = uuid.uuid4().hex[:12]
        self.last_step = None
        self.last_applied = None
        self.live_topology = None                    # topology id now on the live result mesh
        self.created: list[tuple[str, str]] = []     # (kind, name) of every datablock made, for tests and cleanup
        self.material_values: dict = {}

    # -- setup --------------------------------------------------------------------------------------------
    @staticmethod
    def _free_name(base: str) -> str:
        if base not in bpy.data.objects:
            return base
        i = 2
        while f"{base}.{i:03d}" in bpy.data.objects:
            i += 1
        return f"{base}.{i:03d}"

    @staticmethod
    def _offset(target) -> tuple:
        """Beside the target, shifted along +X by its width plus a quarter; beside the earlier results of the same
        target (their slots are taken), not on them."""
        corners = np.array([target.matrix_world @ _vec(c) for c in target.bound_box])
        width = max(float(corners[:, 0].max() - corners[:, 0].min()) if len(corners) else 2.0, 1e-3) * 1.25
        taken = {round(float(o.location.x) / width) for o in bpy.data.objects
                 if o.get("mrd_role") == "result" and o.get("mrd_target") == target.name}
        slot = 1
        while slot in taken:
            slot += 1
        return (width * slot, 0.0, 0.0)

    def _collection(self):
        target = bpy.data.objects.get(self.target_name)
        scene = bpy.data.scenes.get(self.scene_name) or bpy.context.scene
        if target is not None and target.users_collection:
            for col in target.users_collection:
                if col.name in bpy.data.collections or col == scene.collection:
                    return col
        return scene.collection

    def begin(self, start: tuple | None = None, material=None):
        """Creates the result object (with the start shape if known, else empty until the first step)."""
        mesh = bpy.data.meshes.new(self.name)
        obj = bpy.data.objects.new(self.name, mesh)
        self.name = obj.name
        self.created += [("mesh", mesh.name), ("object", obj.name)]
        obj.location = self.offset
        self._collection().objects.link(obj)
        target = bpy.data.objects.get(self.target_name)
        if self.mode == "material" and target is not None and target.type == "MESH":
            from .. import export
            m = export.mesh_arrays(target, split_uv_seams=False)
            set_mesh(mesh, m["vertices"], m["faces"])
            self._copy_uvs(target, mesh, m)
            mat = material or self._result_material(target)
            mesh.materials.append(mat)
        else:
            if start is not None:
                set_mesh(mesh, *start)
            if target is not None and target.active_material is not None:
                mesh.materials.append(target.active_material)  # a shape metamer keeps the target's appearance
        obj["mrd_run"] = self.run_dir
        obj["mrd_target"] = self.target_name
        obj["mrd_mode"] = self.mode
        obj["mrd_run_id"], obj["mrd_role"] = self.run_id, "result"
        obj["mrd_keep_every"] = self.keep_every
        return obj

    @classmethod
    def adopt(cls, obj) -> "ResultWriter":
        """A writer for an existing result (a resumed run): the same object, identity and step history, which the
        resumed steps continue."""
        target = bpy.data.objects.get(str(obj.get("mrd_target", "")))
        w = cls(target, str(obj.get("mrd_mode", "shape")), str(obj["mrd_run"]), int(obj.get("mrd_keep_every", 10)),
                offset=tuple(obj.location), name=obj.name)
        w.run_id = str(obj.get("mrd_run_id") or w.run_id)
        obj["mrd_run_id"], obj["mrd_role"] = w.run_id, "result"
        segs = sorted((o for o in bpy.data.objects if o.get("mrd_run_id") == w.run_id and o.get("mrd_role") == "steps"),
                      key=lambda o: int(o.get("mrd_segment", 0)))
        for o in segs:
            keys = o.data.shape_keys.key_blocks if o.data.shape_keys is not None else []
            steps = [int(o.get("mrd_first", 0))] + [int(k.name.split()[-1]) for k in keys[1:]
                                                    if k.name.startswith("step ")]
            topo = int(o.get("mrd_topology", 0))
            w.faces[topo] = mesh_faces(o.data)
            w.segments.append({"object": o.name, "topology": topo, "first": steps[0], "last": steps[-1],
                               "index": int(o.get("mrd_segment", 0)), "count": len(keys)})
            w.kept += steps
            w.history += [(st, topo, f"steps/step_{st:06d}.npz") for st in steps]
        col = next((c for c in bpy.data.collections if c.get("mrd_run_id") == w.run_id), None)
        if col is not None:
            w.steps_name = col.name
        if w.segments:
            w.live_topology = None
        return w

    def _copy_uvs(self, target, mesh, m):
        """Per-corner UVs of the target's evaluated mesh onto the result (same welded topology)."""
        from .. import export
        depsgraph = export.depsgraph_for()
        eo = target.evaluated_get(depsgraph)
        src = eo.to_mesh()
        try:
            layer = src.uv_layers.active
            if layer is None:
                return
            src.calc_loop_triangles()
            tri_l = np.empty(len(src.loop_triangles) * 3, np.int32)
            src.loop_triangles.foreach_get("loops", tri_l)
            uv = np.empty(len(src.loops) * 2, np.float32)
            layer.data.foreach_get("uv", uv)
            uv = uv.reshape(-1, 2)[tri_l.reshape(-1, 3)]
            if np.linalg.det(np.array(eo.matrix_world)[:3, :3]) < 0:
                uv = uv[:, ::-1]
        finally:
            eo.to_mesh_clear()
        dst = mesh.uv_layers.new(name="UVMap")
        dst.data.foreach_set("uv", np.ascontiguousarray(uv, np.float32).ravel())

    def _result_material(self, target):
        mat = bpy.data.materials.new(self.name)
        self.created.append(("material", mat.name))
        mat.use_nodes = True
        src = target.active_material
        if src is not None:
            mat.diffuse_color = src.diffuse_color
        return mat

    def _mine(self, datablock, role, segment=None) -> bool:
        return (datablock is not None and datablock.get("mrd_run_id") == self.run_id
                and datablock.get("mrd_role") == role and (segment is None or datablock.get("mrd_segment") == segment))

    def _find(self, collection, name, role, segment=None):
        """By name when it still is ours (fast), else by identity (renamed, or re-created by an undo)."""
        hit = collection.get(name)
        if self._mine(hit, role, segment):
            return hit
        return next((d for d in collection if self._mine(d, role, segment)), None)

    def obj(self):
        o = self._find(bpy.data.objects, self.name, "result")
        if o is not None:
            self.name = o.name
        return o

    def segment_obj(self, seg: dict):
        o = self._find(bpy.data.objects, seg["object"], "steps", seg["index"])
        if o is not None:
            seg["object"] = o.name
        return o

    def intact(self) -> bool:
        """Whether the result and every kept step are still in the file (an undo may have removed or rewound them)."""
        if self.obj() is None:
            return False
        for seg in self.segments:
            o = self.segment_obj(seg)
            keys = o.data.shape_keys if o is not None else None
            if keys is None or len(keys.key_blocks) != seg["count"]:
                return False
        return True

    def restore(self, start=None):
        """Makes the result and its step history again from the step files (after an undo removed them), under
        the same names where they are free, with the same identity."""
        for o in [o for o in bpy.data.objects if o.get("mrd_run_id") == self.run_id]:
            mesh = o.data
            bpy.data.objects.remove(o)
            if mesh is not None and mesh.users == 0:
                bpy.data.meshes.remove(mesh)
        history, self.history, self.segments, self.kept = self.history, [], [], []
        self.live_topology = None
        base = result_name(self.target_name)
        self.name = base if base not in bpy.data.objects else self._free_name(base)
        self.begin(start)
        for step, topo, rel in history:
            faces = self.faces.get(topo)
            path = Path(self.run_dir) / rel if rel else None
            if faces is None or path is None or not path.is_file():
                continue
            with np.load(path, allow_pickle=False) as z:
                if "vertices" not in z.files:
                    continue
                v = np.asarray(z["vertices"], np.float32)
            self._keep_shape(step, topo, v, faces, rel)

    # -- per step -----------------------------------------------------------------------------------------
    def keep(self, step: int, last: bool = False, remeshed: bool = False) -> bool:
        return last or remeshed or step % self.keep_every == 0

    def apply_step(self, ev: dict, arrays: dict, live: bool = True, keep: bool | None = None):
        """One `step` event with its arrays (from the step's .npz): updates the live result (if `live`) and keeps
        the step in the history (if it is a logged step)."""
        step = int(ev["step"])
        last = step >= int(ev.get("epochs", step + 1)) - 1
        keep = self.keep(step, last, bool(ev.get("remeshed"))) if keep is None else keep
        topo = ev.get("topology")
        if "faces" in arrays and topo is not None:
            self.faces[int(topo)] = np.asarray(arrays["faces"], np.int32)
        obj = self.obj()
        if "vertices" in arrays:
            v = np.asarray(arrays["vertices"], np.float32)
            faces = self.faces.get(int(topo)) if topo is not None else None
            if live and obj is not None:
                if topo is not None and topo == self.live_topology and len(obj.data.vertices) == len(v):
                    set_vertices(obj.data, v)  # the per-step path: no topology comparison
                else:
                    set_mesh(obj.data, v, faces)
                    self.live_topology = topo
            new_topology = not self.segments or self.segments[-1]["topology"] != topo
            if faces is not None and (keep or new_topology):  # each topology's first step starts its segment
                self._keep_shape(step, int(topo), v, faces, ev.get("data"))
        if "render" in arrays and live:
            set_image(self.name + " render", arrays["render"], float_buffer=False)
        textures = {k.split(".", 1)[1]: arrays[k] for k in arrays if k.startswith("texture.")}
        if (textures or ev.get("material")) and live and obj is not None:
            self._apply_material(obj, textures, ev.get("material") or {})
        if obj is not None:
            obj["mrd_step"] = step
        self.last_step = step
        if live:
            self.last_applied = step

    def _keep_shape(self, step, topo, v, faces, rel=None):
        self.history.append((step, topo, rel))
        seg = self.segments[-1] if self.segments else None
        frame = self.frame0 + step
        if seg is None or seg["topology"] != topo:
            seg = self._new_segment(step, topo, v, faces)
            return
        seg_obj = self.segment_obj(seg)
        if seg_obj is None:  # deleted meanwhile: start again
            self._new_segment(step, topo, v, faces)
            return
        kb = seg_obj.shape_key_add(name=STEP_KEY.format(step), from_mix=False)
        set_shape_key(kb, v)
        keys = seg_obj.data.shape_keys.key_blocks
        prev_frame = self.frame0 + seg["last"]
        # A tent per key: 1 at its own step, 0 at its neighbours' (linear in between: smooth scrubbing).
        kb.value = 0.0
        kb.keyframe_insert("value", frame=prev_frame)
        kb.value = 1.0
        kb.keyframe_insert("value", frame=frame)
        prev = keys.get(STEP_KEY.format(seg["last"]))
        if prev is not None:
            prev.value = 0.0
            prev.keyframe_insert("value", frame=frame)
        seg["last"] = step
        seg["count"] += 1
        self.kept.append(step)

    def _new_segment(self, step, topo, v, faces):
        col = self._steps_collection()
        k = len(self.segments)
        name = f"{self.name} steps.{k:02d}"
        live = self.obj()
        if live is not None and self.live_topology == topo and len(live.data.vertices) == len(v) \
                and live.data.shape_keys is None:
            mesh = live.data.copy()  # the live mesh has this topology already: a C copy beats a rebuild
            mesh.name = name
            set_vertices(mesh, v)
        else:
            mesh = bpy.data.meshes.new(name)
            set_mesh(mesh, v, faces, check=False)
        mesh.materials.clear()
        obj = bpy.data.objects.new(name, mesh)
        self.created += [("mesh", mesh.name), ("object", obj.name)]
        obj.location = self.offset
        res = self.obj()
        if res is not None and res.data.materials:
            mesh.materials.append(res.data.materials[0])
        col.objects.link(obj)
        obj.shape_key_add(name="Basis", from_mix=False)
        frame = self.frame0 + step
        obj["mrd_run_id"], obj["mrd_role"], obj["mrd_segment"] = self.run_id, "steps", k
        obj["mrd_topology"], obj["mrd_first"] = int(topo), int(step)
        if self.segments:  # the previous topology hides where this one starts
            prev = self.segment_obj(self.segments[-1])
            if prev is not None:
                _key_visible(prev, False, frame)
        if frame > self.frame0:
            _key_visible(obj, False, frame - 1)
        _key_visible(obj, True, frame)
        self.segments.append({"object": obj.name, "topology": topo, "first": step, "last": step, "index": k,
                              "count": 1})
        self.kept.append(step)
        return self.segments[-1]

    def _steps_collection(self):
        col = self._find(bpy.data.collections, self.steps_name, "steps")
        if col is None:
            col = bpy.data.collections.new(self.name + " steps")
            col["mrd_run_id"], col["mrd_role"] = self.run_id, "steps"
            self.created.append(("collection", col.name))
            self.steps_name = col.name
            self._collection().children.link(col)
            col.hide_render = True
            _set_layer_visibility(col, False)
        return col

    def _apply_material(self, obj, textures: dict, values: dict):
        mat = obj.active_material
        if mat is None:
            return
        if not mat.use_nodes:
            mat.use_nodes = True
        nodes, links = mat.node_tree.nodes, mat.node_tree.links
        bsdf = next((n for n in nodes if n.bl_idname == "ShaderNodeBsdfPrincipled"), None)
        if bsdf is None:
            bsdf = nodes.new("ShaderNodeBsdfPrincipled")
        for key, arr in textures.items():
            img = set_image(f"{self.name} {key}", arr, float_buffer=True, non_color=key not in COLOR_PARAMS)
            if ("image", img.name) not in self.created:
                self.created.append(("image", img.name))
            socket = _first_input(bsdf, SOCKETS.get(key, ()))
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
        base = values.get("base_color")
        base_rgb = list(base)[:3] if isinstance(base, (list, tuple)) and len(base) >= 3 else None
        for key, value in values.items():
            self.material_values[key] = value
            mat[f"mrd_{key}"] = value if value is not None else 0.0  # the backend's own value, always kept
            socket = _first_input(bsdf, SOCKETS.get(key, ()))
            if socket is None or socket.is_linked or value is None:
                continue
            if key == "specular" and socket.name == "Specular IOR Level":
                # Mitsuba F0 = 0.08 specular; Blender 4+: F0 = ((ior-1)/(ior+1))^2 * 2 level
                ior = bsdf.inputs.get("IOR")
                r = ((ior.default_value - 1) / (ior.default_value + 1)) ** 2 if ior is not None else 0.04
                value = float(value) * 0.08 / max(2 * r, 1e-6)
            _set_socket(socket, value, base_rgb if key.endswith("_tint") else None)

    # -- end ----------------------------------------------------------------------------------------------
    def finish(self, status: str, message: str = ""):
        """After the last step: the result keeps the final shape and material; textures are saved as files in
        the run folder (so they survive saving the .blend); the timeline covers the kept steps."""
        obj = self.obj()
        scene = bpy.data.scenes.get(self.scene_name)
        if obj is not None:
            obj["mrd_status"] = status
            if message:
                obj["mrd_message"] = message[:500]
        if scene is not None and self.kept:
            last_frame = self.frame0 + max(self.kept)
            if scene.frame_end < last_frame:
                scene.frame_end = last_frame
        for kind, name in self.created:
            if kind != "image":
                continue
            img = bpy.data.images.get(name)
            if img is None or not img.is_float:
                continue
            folder = Path(self.run_dir) / "blender"
            try:
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / (bpy.path.clean_name(name) + ".exr")
                img.filepath_raw = str(path)
                img.file_format = "OPEN_EXR"
                img.save()
                img.source = "FILE"
                img.filepath = str(path)
                img.reload()
            except (RuntimeError, OSError):
                pass  # the image stays generated (and unsaved): the run folder has the backend's copy


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


def _first_input(node, names):
    for n in names:
        s = node.inputs.get(n)
        if s is not None:
            return s
    return None


def _vec(c):
    from mathutils import Vector
    return Vector(c)


def _key_visible(obj, visible: bool, frame: int):
    obj.hide_viewport = not visible
    obj.hide_render = not visible
    obj.keyframe_insert("hide_viewport", frame=frame)
    obj.keyframe_insert("hide_render", frame=frame)


def _set_layer_visibility(collection, visible: bool):
    """Hides a collection in every view layer (the eye icon), without excluding it from evaluation."""
    def walk(lc):
        if lc.collection == collection:
            lc.hide_viewport = not visible
            return True
        return any(walk(c) for c in lc.children)
    for scene in bpy.data.scenes:
        for vl in scene.view_layers:
            walk(vl.layer_collection)


def show_steps(result_name_: str, show: bool):
    """Swaps between the final result and the step history (for scrubbing the timeline)."""
    obj = bpy.data.objects.get(result_name_)
    run_id = obj.get("mrd_run_id") if obj is not None else None
    col = next((c for c in bpy.data.collections if run_id and c.get("mrd_run_id") == run_id
                and c.get("mrd_role") == "steps"), None) or bpy.data.collections.get(result_name_ + " steps")
    if col is not None:
        _set_layer_visibility(col, show)
    if obj is not None:
        obj.hide_set(show)
