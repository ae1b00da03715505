"""Step results -> Blender: a result object next to the target that updates live, the step history for scrubbing
on the timeline, and (material runs) image textures and material values.

Layout of what a run creates (all named after the target, e.g. "Suzanne"):
- object + mesh "Suzanne.metamer": the latest step while the run goes, the final result afterwards: an ordinary
  mesh (no shape keys) with its material, placed next to the target (same world frame, shifted along X);
- collection "Suzanne.metamer steps" (hidden until you show it) with one object per mesh topology: the start
  shape and each remesh start a new one. Each holds the logged steps of its topology as shape keys ("step 000012"),
  keyed so that frame `frame_start + step` shows that step, and its visibility is keyed to its span of steps:
  scrub the timeline to replay the optimization (history.py);
- image "Suzanne.metamer render": the backend's latest render of view 0;
- material runs: material "Suzanne.metamer" (Principled BSDF) with float images "Suzanne.metamer <param>"
  (material.py).

Nothing here keeps a bpy reference between calls (undo and file loads invalidate them). A run's objects and its
steps collection carry its identity as custom properties (`mrd_run_id`, `mrd_role`: result | steps, `mrd_segment`),
so they are found again after an undo or a rename; an undo during a run that removed them (or rewound their history)
is repaired from the step files in the run folder (`restore`).
"""
from __future__ import annotations

import uuid
from pathlib import Path

import bpy
import numpy as np
from mathutils import Vector

from .. import bpy_arrays
from ..bpy_arrays import set_image, set_mesh, set_vertices
from .material import apply_textures, apply_values, result_material
from .history import STEP_KEY, SUFFIX, StepHistory, result_name, show_steps

__all__ = ["ResultWriter", "result_name", "show_steps", "SUFFIX", "STEP_KEY"]


class ResultWriter(StepHistory):
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
        corners = np.array([target.matrix_world @ Vector(c) for c in target.bound_box])
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
            self._copy_target_mesh(target, mesh)
            mat = material
            if mat is None:
                mat = result_material(self.name, target)
                self.created.append(("material", mat.name))
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

    @staticmethod
    def _copy_target_mesh(target, mesh):
        """The target's evaluated mesh, welded, in world space, with its per-corner UVs (active map) on `mesh`."""
        raw = bpy_arrays.evaluated_mesh(target, uv="active")
        if raw is None:
            return
        used, faces = bpy_arrays.weld(raw["tri_v"], raw["n_vertices"])
        set_mesh(mesh, raw["world"][used], faces)
        if raw["corner_uv"] is None:
            return
        uv = raw["corner_uv"][raw["tri_l"]]  # the winding is already flipped back under a mirroring transform
        dst = mesh.uv_layers.new(name="UVMap")
        dst.data.foreach_set("uv", np.ascontiguousarray(uv, np.float32).ravel())

    @classmethod
    def adopt(cls, obj) -> "ResultWriter":
        """A writer for an existing result (a resumed run): the same object, identity and step history, which the
        resumed steps continue."""
        target = bpy.data.objects.get(str(obj.get("mrd_target", "")))
        w = cls(target, str(obj.get("mrd_mode", "shape")), str(obj["mrd_run"]), int(obj.get("mrd_keep_every", 10)),
                offset=tuple(obj.location), name=obj.name)
        w.run_id = str(obj.get("mrd_run_id") or w.run_id)
        obj["mrd_run_id"], obj["mrd_role"] = w.run_id, "result"
        w._adopt_segments()
        return w

    def obj(self):
        o = self._find(bpy.data.objects, self.name, "result")
        if o is not None:
            self.name = o.name
        return o

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
            self._apply_vertices(obj, step, topo, np.asarray(arrays["vertices"], np.float32), live, keep,
                                 ev.get("data"))
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

    def _apply_vertices(self, obj, step, topo, v, live, keep, rel):
        faces = self.faces.get(int(topo)) if topo is not None else None
        if live and obj is not None:
            if topo is not None and topo == self.live_topology and len(obj.data.vertices) == len(v):
                set_vertices(obj.data, v)  # the per-step path: no topology comparison
            else:
                set_mesh(obj.data, v, faces)
                self.live_topology = topo
        new_topology = not self.segments or self.segments[-1]["topology"] != topo
        if faces is not None and (keep or new_topology):  # each topology's first step starts its segment
            self._keep_shape(step, int(topo), v, faces, rel)

    def _apply_material(self, obj, textures: dict, values: dict):
        mat = obj.active_material
        if mat is None:
            return
        for name in apply_textures(mat, self.name, textures):
            if ("image", name) not in self.created:
                self.created.append(("image", name))
        self.material_values.update(values)
        apply_values(mat, values)

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
            img = bpy.data.images.get(name) if kind == "image" else None
            if img is not None and img.is_float:
                self._save_texture(img)

    def _save_texture(self, img):
        folder = Path(self.run_dir) / "blender"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / (bpy.path.clean_name(img.name) + ".exr")
            img.filepath_raw = str(path)
            img.file_format = "OPEN_EXR"
            img.save()
            img.source = "FILE"
            img.filepath = str(path)
            img.reload()
        except (RuntimeError, OSError):
            pass  # the image stays generated (and unsaved): the run folder has the backend's copy
