"""The "MRD" tab of the 3D viewport's sidebar (N): settings, Optimize Metamer / Cancel, progress, results."""

import textwrap

import bpy

from . import job, preferences, properties


class MRDPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "MRD"


SIDEBAR_WIDTH = 220   # px: Blender's default sidebar width (UI_SIDEBAR_PANEL_WIDTH), when the region is unknown
CHAR_WIDTH = 6.5      # px per character of the interface font at scale 1 (about)


def text_width(context) -> int:
    """How many characters a label line holds in this region (the panel's margins and an icon left out)."""
    region = getattr(context, "region", None)
    width = getattr(region, "width", 0) or SIDEBAR_WIDTH
    scale = getattr(getattr(context, "preferences", None), "view", None)
    scale = getattr(scale, "ui_scale", 1.0) or 1.0
    return max(12, int((width - 44 * scale) / (CHAR_WIDTH * scale)))


def wrapped(layout, text, width, icon="NONE", lines=6):
    """`text` as labels wrapped to the region's width (the first line with the icon)."""
    for i, line in enumerate(textwrap.wrap(str(text), width)[:lines]):
        layout.label(text=line, icon=icon if i == 0 else "NONE")


class VIEW3D_PT_mrd(MRDPanel, bpy.types.Panel):
    bl_label = "Model Metamers"
    bl_idname = "VIEW3D_PT_mrd"

    def draw(self, context):
        # One setting a row, with short names, so that nothing is cut at the default sidebar width; long values
        # (object names, paths, the objective) get the whole row under a label.
        layout = self.layout
        s = context.scene.mrd
        width = text_width(context)
        running = job.CURRENT is not None and job.CURRENT.active
        col = layout.column()
        col.enabled = not running
        col.prop(s, "target", text="Target")
        if s.target is None:
            obj = context.active_object
            wrapped(col, f"Active: {obj.name}" if obj is not None else "No active object", width,
                    "OBJECT_DATA" if obj is not None and obj.type == "MESH" else "ERROR", lines=2)
        col.prop(s, "mode", expand=True)
        if s.mode == "shape":
            col.prop(s, "start", text="Start")
            if s.start == "object":
                col.prop(s, "start_object", text="")
            else:
                col.prop(s, "icosphere_level", text="Level")
        col.label(text="Objective")
        col.prop(s, "model", text="")
        if properties.NATIVE_SIZE.get(s.model):
            col.prop(s, "weights", text="")
            if s.weights == "file":
                col.prop(s, "weights_file", text="")
        sub = col.column(align=True)
        sub.prop(s, "views", text="Views")
        sub.prop(s, "spp", text="Samples")
        sub.prop(s, "epochs", text="Epochs")
        sub.prop(s, "lr", text="Learn. rate")
        sub = col.column(align=True)
        sub.prop(s, "use_native_size", text="Model's size")
        res = sub.row(align=True)
        res.enabled = not s.use_native_size
        res.prop(s, "resolution", text="Size")
        if s.mode == "shape":
            col.prop(s, "step_lambda", text="Smoothness λ")
            col.label(text="Remesh after epochs")
            col.prop(s, "remesh", text="")
        else:
            self.draw_material(col, s)
        col.label(text="Output folder")
        col.prop(s, "output_dir", text="")

        layout.separator()
        if running:
            j = job.CURRENT
            box = layout.box()
            wrapped(box, j.progress_text().replace("MRD: ", ""), width, "TIME", lines=4)
            if j.epochs and j.step is not None and j.finish_time is None:
                frac = (j.step + 1) / j.epochs
                if hasattr(box, "progress"):  # Blender 4.0+
                    box.progress(factor=frac, text=f"{frac * 100:.0f}%")
            if j.last_log:
                wrapped(box, j.last_log, width, "INFO", lines=3)
            layout.operator("mrd.cancel", icon="CANCEL", text="Stop now" if j.status == "cancelling" else "Cancel")
        else:
            layout.operator("mrd.optimize_metamer", icon="PLAY", text="Optimize Metamer")
            if job.resumable_run(context) is not None:
                layout.operator("mrd.resume", icon="FF", text="Resume cancelled run")
            if preferences.backend_python(context) is None:
                wrapped(layout, "Set the backend Python in the add-on preferences", width, "ERROR")
        last = job.LAST
        if last is not None and not running:
            box = layout.box()
            wrapped(box, last.summary(), width, "ERROR" if last.status == "failed" else "CHECKMARK", lines=8)
            for w in last.warnings[:4]:
                wrapped(box, w, width, "ERROR", lines=4)
            for n in last.notes[:6]:
                wrapped(box, n, width, "INFO", lines=3)

    @staticmethod
    def draw_material(col, s):
        col.label(text="Parameters")
        grid = col.grid_flow(columns=2, even_columns=True, align=True)
        grid.prop(s, "material_params")
        col.prop(s, "material_init", text="Start")
        col.prop(s, "texture_source", text="Texture")
        if s.texture_source == "custom":
            sub = col.column(align=True)
            sub.prop(s, "texture_width", text="Width")
            sub.prop(s, "texture_height", text="Height")


class VIEW3D_PT_mrd_advanced(MRDPanel, bpy.types.Panel):
    bl_label = "Regularizers & more"
    bl_parent_id = "VIEW3D_PT_mrd"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        s = context.scene.mrd
        col = self.layout.column()
        col.enabled = not (job.CURRENT is not None and job.CURRENT.active)
        sub = col.column(align=True)
        sub.enabled = s.mode == "shape"
        sub.prop(s, "reg_laplacian")
        sub.prop(s, "reg_edge")
        sub.prop(s, "reg_area")
        sub.prop(s, "reg_arap")
        col.prop(s, "seed")
        col.prop(s, "patience")
        col.prop(s, "keep_every")


class VIEW3D_PT_mrd_results(MRDPanel, bpy.types.Panel):
    bl_label = "Results"
    bl_parent_id = "VIEW3D_PT_mrd"

    def draw(self, context):
        col = self.layout.column(align=True)
        col.label(text="Open")
        row = col.row(align=True)
        row.operator("mrd.open_renders", text="Target", icon="IMAGE_DATA").which = "target"
        row.operator("mrd.open_renders", text="Result", icon="IMAGE_DATA").which = "final"
        row = col.row(align=True)
        row.operator("mrd.open_renders", text="Latest", icon="RENDER_RESULT").which = "live"
        row.operator("mrd.open_renders", text="Curves", icon="GRAPH").which = "curves"
        col.label(text="Show")
        row = col.row(align=True)
        row.operator("mrd.show_steps", text="Steps", icon="ANIM").show = True
        row.operator("mrd.show_steps", text="Result", icon="MESH_DATA").show = False


classes = (VIEW3D_PT_mrd, VIEW3D_PT_mrd_advanced, VIEW3D_PT_mrd_results)


register, unregister = bpy.utils.register_classes_factory(classes)
