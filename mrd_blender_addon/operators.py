"""Operators: Optimize Metamer (`mrd.optimize_metamer`), Cancel, open the run's renders, show the step history."""

from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty

from . import apply, bpy_arrays, job


def _busy():
    return job.CURRENT is not None and job.CURRENT.active


def _refuse(cls, why: str) -> bool:
    """poll() says no, and why (Blender 3.0+ shows it on the greyed-out button)."""
    if hasattr(cls, "poll_message_set"):
        cls.poll_message_set(why)
    return False


def _launch(op, context, **kwargs):
    """job.launch; a refused launch is reported on the operator and gives None (in background mode Blender prints
    the report once and bpy.ops raises with it)."""
    try:
        return job.launch(context, **kwargs)
    except job.JobError as exc:
        op.report({"ERROR"}, str(exc))
        return None


class MRD_OT_optimize_metamer(bpy.types.Operator):
    """Optimize a metamer of the target: export it, run the backend in its own process and show the result next to
    the target while it runs (blocks until done in background mode)"""
    bl_idname = "mrd.optimize_metamer"
    bl_label = "Optimize Metamer"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        if _busy():
            return _refuse(cls, "a run is going: cancel it first")
        return context.scene is not None and hasattr(context.scene, "mrd")

    def execute(self, context):
        j = _launch(self, context)
        if j is None:
            return {"CANCELLED"}
        if not bpy.app.background:
            for w in j.warnings:
                self.report({"WARNING"}, w)
            for n in j.notes:
                self.report({"INFO"}, n)
            self.report({"INFO"}, f"MRD: optimizing {j.target_name}; files in {j.run_dir}")
            return {"FINISHED"}
        # Background: the job has printed its warnings, notes and a finished run's summary; Blender prints every
        # report, so only a failure is reported (once, as "Error: ..."; it makes bpy.ops raise with the reason).
        if j.status == "failed":
            self.report({"ERROR"}, j.summary())
            return {"FINISHED"} if j.writer is not None else {"CANCELLED"}
        return {"FINISHED"}


class MRD_OT_cancel(bpy.types.Operator):
    """Stop the run after the current step (everything written so far is kept); press again to stop it at once"""
    bl_idname = "mrd.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return _busy()

    def execute(self, context):
        twice = job.CURRENT.status == "cancelling"
        job.CURRENT.cancel()
        self.report({"INFO"}, "MRD: stopping the backend now" if twice else
                    "MRD: stopping after the current step (press again to stop at once)")
        return {"FINISHED"}


class MRD_OT_resume(bpy.types.Operator):
    """Continue a cancelled run where it stopped, in its own run folder; the same result object follows it"""
    bl_idname = "mrd.resume"
    bl_label = "Resume"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        if _busy():
            return _refuse(cls, "a run is going: cancel it first")
        if job.resumable_run(context) is None:
            return _refuse(cls, "no cancelled run to resume (select its result)")
        return True

    def execute(self, context):
        j = _launch(self, context, resume_dir=job.resumable_run(context))
        if j is None:
            return {"CANCELLED"}
        if bpy.app.background and j.status == "failed":
            self.report({"ERROR"}, j.summary())
        elif not bpy.app.background:
            self.report({"INFO"}, f"MRD: resuming {j.run_dir}")
        return {"FINISHED"}


class MRD_OT_report(bpy.types.Operator):
    """Shows a message in the status bar and the Info editor (used by the run's timer)"""
    bl_idname = "mrd.report"
    bl_label = "MRD report"
    bl_options = {"INTERNAL"}

    level: EnumProperty(items=[("INFO", "Info", ""), ("WARNING", "Warning", ""), ("ERROR", "Error", "")])
    message: StringProperty()

    def execute(self, context):
        self.report({self.level}, self.message)
        return {"FINISHED"}


def run_folder(context) -> Path | None:
    """The run of the active result object, else the current or last run."""
    obj = getattr(context, "active_object", None)
    if obj is not None and obj.get("mrd_run"):
        return Path(obj["mrd_run"])
    j = job.CURRENT or job.LAST
    return j.run_dir if j is not None else None


class MRD_OT_open_renders(bpy.types.Operator):
    """Open the target's views or the result's renders in the Image Editor"""
    bl_idname = "mrd.open_renders"
    bl_label = "Open renders"

    which: EnumProperty(name="Which", items=[
        ("target", "Target views", "The target rendered from every view (renders/target_*.png)"),
        ("final", "Result renders", "The result rendered from every view (renders/final_*.png)"),
        ("live", "Latest step", "The backend's latest render of view 0"),
        ("curves", "Loss curves", "Loss and similarity over the run (curves.png)")], default="target")

    def execute(self, context):
        images = []
        if self.which == "live":
            name = next((o.name for o in (context.active_object,) if o is not None and o.get("mrd_run")), None)
            j = job.CURRENT or job.LAST
            name = name or (j.writer.name if j is not None and j.writer is not None else None)
            img = bpy.data.images.get(f"{name} render") if name else None
            if img is None:
                self.report({"ERROR"}, "no live render yet: start a run (or select a result object)")
                return {"CANCELLED"}
            images = [img]
        else:
            folder = run_folder(context)
            if folder is None:
                self.report({"ERROR"}, "no run yet: optimize a metamer first (or select a result object)")
                return {"CANCELLED"}
            names = {"target": ["renders/target_grid.png"], "final": ["renders/final_grid.png"],
                     "curves": ["curves.png"]}[self.which]
            if self.which in ("target", "final"):
                names += sorted(str(p.relative_to(folder)) for p in (folder / "renders").glob(f"{self.which}_[0-9]*.png"))
            for rel in names:
                path = folder / rel
                if path.is_file():
                    images.append(bpy_arrays.load_image(path, f"{folder.name} {Path(rel).stem}"))
            if not images:
                self.report({"ERROR"}, f"{folder} has no {self.which} renders yet (they are written when the run "
                                       "starts / ends)")
                return {"CANCELLED"}
        shown = _show_in_image_editor(context, images[0])
        self.report({"INFO"}, f"loaded {len(images)} image(s): {images[0].name}" +
                    ("" if shown else " (open an Image Editor to see them)"))
        return {"FINISHED"}


def _show_in_image_editor(context, image) -> bool:
    screen = getattr(context, "screen", None)
    if screen is None:
        return False
    for area in screen.areas:
        if area.type == "IMAGE_EDITOR":
            area.spaces.active.image = image
            return True
    if bpy.app.background:
        return False
    try:  # a new window with an Image Editor, like F11 for renders
        bpy.ops.wm.window_new()
        win = context.window_manager.windows[-1]
        area = win.screen.areas[0]
        area.type = "IMAGE_EDITOR"
        area.spaces.active.image = image
        return True
    except Exception:
        return False


class MRD_OT_show_steps(bpy.types.Operator):
    """Show the step history (scrub the timeline to replay the optimization) or the final result"""
    bl_idname = "mrd.show_steps"
    bl_label = "Show steps"
    bl_options = {"REGISTER", "UNDO"}

    show: bpy.props.BoolProperty(default=True)

    def execute(self, context):
        obj = context.active_object
        name = obj.name if obj is not None and obj.get("mrd_run") else None
        if name is None:
            j = job.LAST or job.CURRENT
            name = j.writer.name if j is not None and j.writer is not None else None
        if name is None or bpy.data.collections.get(name + " steps") is None:
            self.report({"ERROR"}, "select a result object (its steps are in the '<name> steps' collection)")
            return {"CANCELLED"}
        apply.show_steps(name, self.show)
        return {"FINISHED"}


classes = (MRD_OT_optimize_metamer, MRD_OT_cancel, MRD_OT_resume, MRD_OT_report, MRD_OT_open_renders,
           MRD_OT_show_steps)


register, unregister = bpy.utils.register_classes_factory(classes)
