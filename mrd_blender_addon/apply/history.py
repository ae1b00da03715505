"""The step history of a run: one object per mesh topology in the collection "<result> steps", each holding its
logged steps as shape keys keyed to frames (frame `frame_start + step` shows that step) and its visibility keyed to
its span of steps, so scrubbing the timeline replays the optimization.

`StepHistory` is the part of `ResultWriter` that keeps, finds, adopts and restores these segments; it holds names
and plain numbers only (undo and file loads invalidate bpy references).
"""
from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from ..bpy_arrays import mesh_faces, set_mesh, set_shape_key, set_vertices

SUFFIX = ".metamer"
STEP_KEY = "step {:06d}"


def result_name(target_name: str) -> str:
    return target_name + SUFFIX


class StepHistory:
    """Segments of kept steps. Expects from the writer: name, run_id, run_dir, frame0, offset, steps_name, faces,
    segments, kept, history, live_topology, created, obj(), begin(), _collection(), _free_name()."""

    # -- finding what is ours -----------------------------------------------------------------------------
    def _mine(self, datablock, role, segment=None) -> bool:
        return (datablock is not None and datablock.get("mrd_run_id") == self.run_id
                and datablock.get("mrd_role") == role and (segment is None or datablock.get("mrd_segment") == segment))

    def _find(self, collection, name, role, segment=None):
        """By name when it still is ours (fast), else by identity (renamed, or re-created by an undo)."""
        hit = collection.get(name)
        if self._mine(hit, role, segment):
            return hit
        return next((d for d in collection if self._mine(d, role, segment)), None)

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

    def _adopt_segments(self):
        """Reads back the segments (and the steps collection) of this run_id from the file (a resumed run)."""
        segs = sorted((o for o in bpy.data.objects if self._mine(o, "steps")),
                      key=lambda o: int(o.get("mrd_segment", 0)))
        for o in segs:
            keys = o.data.shape_keys.key_blocks if o.data.shape_keys is not None else []
            steps = [int(o.get("mrd_first", 0))] + [int(k.name.split()[-1]) for k in keys[1:]
                                                    if k.name.startswith("step ")]
            topo = int(o.get("mrd_topology", 0))
            self.faces[topo] = mesh_faces(o.data)
            self.segments.append({"object": o.name, "topology": topo, "first": steps[0], "last": steps[-1],
                                  "index": int(o.get("mrd_segment", 0)), "count": len(keys)})
            self.kept += steps
            self.history += [(st, topo, f"steps/step_{st:06d}.npz") for st in steps]
        col = next((c for c in bpy.data.collections if c.get("mrd_run_id") == self.run_id), None)
        if col is not None:
            self.steps_name = col.name
        if self.segments:
            self.live_topology = None

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

    # -- keeping steps ------------------------------------------------------------------------------------
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

    def _segment_mesh(self, name, topo, v, faces):
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
        return mesh

    def _new_segment(self, step, topo, v, faces):
        col = self._steps_collection()
        k = len(self.segments)
        name = f"{self.name} steps.{k:02d}"
        mesh = self._segment_mesh(name, topo, v, faces)
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
