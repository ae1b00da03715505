"""The "MRD" tab of the 3D viewport's sidebar (N): settings, Optimize Metamer / Cancel, progress, results."""

import textwrap

import bpy

from . import job, preferences, properties


class MRDPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "MRD"


class VIEW3D_PT_mrd(MRDPanel, bpy.types.Panel):
    bl_label = "Model Metamers"
    bl_idname = "VIEW3D_PT_mrd"

    def draw(self, context):
        layout = self.layout
        s = context.scene.mrd
        running = job.CURRENT is not None and job.CURRENT.active
        col = layout.column()
        col.enabled = not running
        col.prop(s, "target")
        if s.target is None:
            obj = context.active_object
            col.label(text=f"Active object: {obj.name}" if obj is not None else "No active object",
                      icon="OBJECT_DATA" if obj is not None and obj.type == "MESH" else "ERROR")
        col.prop(s, "mode", expand=True)
        if s.mode == "shape":
            col.prop(s, "start")
            if s.start == "object":
                col.prop(s, "start_object")
            else:
                col.prop(s, "icosphere_level")
        col.prop(s, "model")
        if properties.NATIVE_SIZE.get(s.model):
            col.prop(s, "weights")
            if s.weights == "file":
                col.prop(s, "weights_file")
        grid = col.grid_flow(columns=2, even_columns=True)
        grid.prop(s, "views")
        grid.prop(s, "spp")
        grid.prop(s, "epochs")
        grid.prop(s, "lr")
        row = col.row(align=True)
        sub = row.row(align=True)
        sub.enabled = not s.use_native_size
        sub.prop(s, "resolution")
        row.prop(s, "use_native_size", toggle=True)
        if s.mode == "shape":
            col.prop(s, "step_lambda")
            col.prop(s, "remesh")
        col.prop(s, "output_dir")

        layout.separator()
        if running:
            j = job.CURRENT
            box = layout.box()
            box.label(text=j.progress_text().replace("MRD: ", ""), icon="TIME")
            if j.epochs and j.step is not None:
                frac = (j.step + 1) / j.epochs
                if hasattr(box, "progress"):  # Blender 4.0+
                    box.progress(factor=frac, text=f"{frac * 100:.0f}%")
            if j.last_log:
                box.label(text=j.last_log[:90], icon="INFO")
            layout.operator("mrd.cancel", icon="CANCEL",
                            text="Stop now" if j.status == "cancelling" else "Cancel")
        else:
            layout.operator("mrd.optimize_metamer", icon="PLAY")
            if preferences.backend_python(context) is None:
                layout.label(text="Set the backend Python in the add-on preferences", icon="ERROR")
        last = job.LAST
        if last is not None and not running:
            box = layout.box()
            icon = "ERROR" if last.status == "failed" else "CHECKMARK"
            for i, line in enumerate(textwrap.wrap(str(last.summary()), 48)[:6]):
                box.label(text=line, icon=icon if i == 0 else "NONE")
            for w in last.warnings[:4]:
                for i, line in enumerate(textwrap.wrap(str(w), 48)[:3]):
                    box.label(text=line, icon="ERROR" if i == 0 else "NONE")
            for n in last.notes[:6]:
                for i, line in enumerate(textwrap.wrap(str(n), 48)[:3]):
                    box.label(text=line, icon="INFO" if i == 0 else "NONE")


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
        row = col.row(align=True)
        row.operator("mrd.open_renders", text="Target views", icon="IMAGE_DATA").which = "target"
        row.operator("mrd.open_renders", text="Result renders", icon="IMAGE_DATA").which = "final"
        row = col.row(align=True)
        row.operator("mrd.open_renders", text="Latest step", icon="RENDER_RESULT").which = "live"
        row.operator("mrd.open_renders", text="Curves", icon="GRAPH").which = "curves"
        row = col.row(align=True)
        row.operator("mrd.show_steps", text="Show steps", icon="ANIM").show = True
        row.operator("mrd.show_steps", text="Show result", icon="MESH_DATA").show = False


classes = (VIEW3D_PT_mrd, VIEW3D_PT_mrd_advanced, VIEW3D_PT_mrd_results)


register, unregister = bpy.utils.register_classes_factory(classes)
