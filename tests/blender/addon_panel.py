"""Driver of tests/test_addon_panel.py: what the panel draws at the default sidebar width, and the material
settings a run takes from it.

    python tests/blender/addon_panel.py TEST TMP
"""
import json
import os

import bpy
from driver import build_scene, enable, main, result, settings


class Stub:
    """A stand-in layout that records every label and every field's shown name, and in which kind of row it sits."""

    def __init__(self, log, kind="column"):
        self.log, self.kind, self.enabled, self.active = log, kind, True, True

    def column(self, **k):
        return Stub(self.log, "column")

    def box(self, **k):
        return Stub(self.log, "column")

    def row(self, **k):
        return Stub(self.log, "row")

    def grid_flow(self, columns=0, **k):
        return Stub(self.log, f"grid{columns}")

    def prop(self, data, name, text=None, **k):
        rna = data.bl_rna.properties[name]
        shown = [i.name for i in rna.enum_items] if getattr(rna, "is_enum_flag", False) or k.get("expand") else \
            [rna.name if text is None else text]
        self.log.append(("prop", name, shown, self.kind))

    def operator(self, idname, text=None, **k):
        self.log.append(("operator", idname, [text or idname], self.kind))
        return type("Props", (), {})()

    def label(self, text="", **k):
        self.log.append(("label", text, [text], self.kind))

    def separator(self, **k):
        pass

    def progress(self, **k):
        pass


def draw(cls, context):
    log = []
    cls.draw(type("P", (), {"layout": Stub(log), "draw_material": cls.__dict__.get("draw_material")})(), context)
    return log


def sidebar_width(tmp):
    enable()
    from mrd_blender_addon import panel
    build_scene(tmp, texture=False)
    out = {"width": panel.text_width(bpy.context)}
    out["shape"] = draw(panel.VIEW3D_PT_mrd, bpy.context)
    settings(mode="material", texture_source="custom", model="resnet")
    out["material"] = draw(panel.VIEW3D_PT_mrd, bpy.context)
    out["results"] = draw(panel.VIEW3D_PT_mrd_results, bpy.context)
    out["advanced"] = draw(panel.VIEW3D_PT_mrd_advanced, bpy.context)
    settings(mode="shape", epochs=2, output_dir=os.path.join(tmp, "runs"))
    bpy.ops.mrd.optimize_metamer()   # a finished run: its long summary and notes are wrapped
    out["after"] = draw(panel.VIEW3D_PT_mrd, bpy.context)
    result(**out)


def material_settings(tmp):
    enable()
    from mrd_blender_addon import job
    ob, _ = build_scene(tmp, texture=True)
    img = bpy.data.images.new("big", 64, 32)            # the target's texture: 64 x 32 (stands for 1024 x 1024)
    ob.active_material.node_tree.nodes["Image Texture"].image = img
    s = settings(mode="material", epochs=1, output_dir=os.path.join(tmp, "runs"))
    s.material_params, s.material_init = {"base_color", "roughness"}, "gray"
    cfgs, notes = [], []
    for source in ("target", "custom"):
        s.texture_source, s.texture_width, s.texture_height = source, 40, 20
        j = job.Job.start(bpy.context)
        j.worker.terminate(grace=5)
        cfgs.append(json.loads((j.run_dir / "input" / "config.json").read_text()))
        notes.append([n for n in j.notes if "textures of" in n])
    result(cfgs=cfgs, notes=notes)


if __name__ == "__main__":
    main({f.__name__: f for f in (sidebar_width, material_settings)})
