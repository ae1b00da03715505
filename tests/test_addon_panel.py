"""The panel reads at the default sidebar width (short labels, text wrapped to the region), and material runs take
their texture size, parameters and start from the panel (bpy module)."""

import pytest

from addon_helpers import FAKE, ROOT, has_bpy, run_bpy

pytestmark = [pytest.mark.blender, pytest.mark.skipif(not has_bpy(), reason="needs the bpy module")]
FAKE_ENV = {"MRD_WORKER_OPTIMIZER": FAKE, "MRD_WORKER_PYTHONPATH": str(ROOT / "tests")}

# A stand-in layout that records every label and every field's shown name, and in which kind of row it sits.
STUB = '''
class Stub:
    def __init__(self, log, kind="column"):
        self.log, self.kind, self.enabled, self.active = log, kind, True, True
    def column(self, **k): return Stub(self.log, "column")
    def box(self, **k): return Stub(self.log, "column")
    def row(self, **k): return Stub(self.log, "row")
    def grid_flow(self, columns=0, **k): return Stub(self.log, f"grid{columns}")
    def prop(self, data, name, text=None, **k):
        rna = data.bl_rna.properties[name]
        shown = [i.name for i in rna.enum_items] if getattr(rna, "is_enum_flag", False) or k.get("expand") else \\
            [rna.name if text is None else text]
        self.log.append(("prop", name, shown, self.kind))
    def operator(self, idname, text=None, **k):
        self.log.append(("operator", idname, [text or idname], self.kind))
        return type("Props", (), {})()
    def label(self, text="", **k): self.log.append(("label", text, [text], self.kind))
    def separator(self, **k): pass
    def progress(self, **k): pass
def draw(cls, context):
    log = []
    cls.draw(type("P", (), {"layout": Stub(log), "draw_material": cls.__dict__.get("draw_material")})(), context)
    return log
'''


def test_panel_fits_the_default_sidebar_width(tmp_path):
    r = run_bpy(STUB + f"""
enable()
ob, _ = build_scene({str(tmp_path)!r}, texture=False)
from mrd_blender_addon import job, panel
s = bpy.context.scene.mrd
out = {{"width": panel.text_width(bpy.context)}}
out["shape"] = draw(panel.VIEW3D_PT_mrd, bpy.context)
s.mode, s.texture_source, s.model = "material", "custom", "resnet"
out["material"] = draw(panel.VIEW3D_PT_mrd, bpy.context)
out["results"] = draw(panel.VIEW3D_PT_mrd_results, bpy.context)
out["advanced"] = draw(panel.VIEW3D_PT_mrd_advanced, bpy.context)
s.mode, s.epochs, s.output_dir = "shape", 2, {str(tmp_path / "runs")!r}
bpy.ops.mrd.optimize_metamer()   # a finished run: its long summary and notes are wrapped
out["after"] = draw(panel.VIEW3D_PT_mrd, bpy.context)
result(**out)
""", **FAKE_ENV)
    width = r["width"]
    assert 20 <= width <= 32          # 220 px at scale 1 holds about 27 characters
    for key in ("shape", "material", "results", "advanced", "after"):
        for kind, name, shown, where in r[key]:
            for text in shown:
                if kind == "label":
                    assert len(text) <= width, (key, text)
                elif where == "grid2" or where == "row":   # two to a row: half the width each
                    assert len(text) <= width // 2 - 1, (key, name, text)
                else:
                    assert len(text) <= 16, (key, name, text)   # a field's name leaves room for its value
    props = {c[1] for c in r["material"] if c[0] == "prop"}
    assert {"material_params", "material_init", "texture_source", "texture_width", "texture_height"} <= props
    summary = [c[1] for c in r["after"] if c[0] == "label"]
    assert any(t.startswith("MRD done") for t in summary) and len(summary) > 3   # wrapped, not cut


def test_material_settings_reach_the_run_and_the_targets_texture_size_is_kept(tmp_path):
    r = run_bpy(f"""
enable()
ob, _ = build_scene({str(tmp_path)!r}, texture=True)
img = bpy.data.images.new("big", 64, 32)            # the target's texture: 64 x 32 (stands for 1024 x 1024)
ob.active_material.node_tree.nodes["Image Texture"].image = img
from mrd_blender_addon import job
s = bpy.context.scene.mrd
s.mode, s.epochs, s.output_dir = "material", 1, {str(tmp_path / "runs")!r}
s.material_params, s.material_init = {{"base_color", "roughness"}}, "gray"
cfgs, notes = [], []
for source in ("target", "custom"):
    s.texture_source, s.texture_width, s.texture_height = source, 40, 20
    j = job.Job.start(bpy.context)
    j.worker.terminate(grace=5)
    cfgs.append(json.loads((j.run_dir / "input" / "config.json").read_text()))
    notes.append([n for n in j.notes if "textures of" in n])
result(cfgs=cfgs, notes=notes)
""", **FAKE_ENV)
    target, custom = r["cfgs"]
    assert target["texture_size"] == [64, 32] and custom["texture_size"] == [40, 20]
    assert target["params"] == ["base_color", "roughness"] and target["init"] == "gray"
    assert r["notes"][0] == ["material textures of 64x32 (the target's)"]
