"""The add-on's export (bpy objects/world -> SceneSpec), compared with Blender's own data (bpy module, one process
per test)."""
import pytest

from addon_helpers import has_bpy, run_bpy

pytestmark = [pytest.mark.blender, pytest.mark.skipif(not has_bpy(), reason="needs the bpy module (pip install bpy)")]


def test_export_monkey_with_material_and_hdri_world(tmp_path):
    r = run_bpy(f"""
import math, sys
ob, expected = build_scene({str(tmp_path)!r}, rotation_z=30.0, strength=1.5)
from mrd_blender_addon import export
from mrd_backend.spec_io import save_spec, load_spec
ex = export.export_target(ob, bpy.context, views=3, width=24, height=16)
spec = ex.spec
# Blender's own data: evaluated mesh (subsurf applied), world matrix, per-corner UVs
dg = bpy.context.evaluated_depsgraph_get()
eo = ob.evaluated_get(dg)
me = eo.to_mesh()
me.calc_loop_triangles()
co = np.array([tuple(eo.matrix_world @ v.co) for v in me.vertices], np.float32)
corner_uv = np.array([tuple(d.uv) for d in me.uv_layers.active.data], np.float32)
tri_v = np.array([tuple(t.vertices) for t in me.loop_triangles])
tri_l = np.array([tuple(t.loops) for t in me.loop_triangles])
n_tris = len(me.loop_triangles)
eo.to_mesh_clear()
vm = ex.vertex_map
# every spec triangle corner: same Blender vertex, same world position, same UV as Blender's corner
corner_vertex_ok = bool((vm[spec.faces] == tri_v).all())
pos_err = float(np.abs(spec.vertices[spec.faces] - co[tri_v]).max())
uv_err = float(np.abs(spec.uvs[spec.faces] - corner_uv[tri_l]).max())
# seams: a Blender vertex with several UVs became several spec vertices, each with exactly one UV
n_split = int(len(vm) - len(np.unique(vm)))
save_spec(spec, {str(tmp_path / "s.npz")!r})
back = load_spec({str(tmp_path / "s.npz")!r})
m, env = spec.material, spec.environment
tex_err = float(np.abs(m.base_color - np.where(expected["tex"] <= 0.04045, expected["tex"] / 12.92,
                                               ((expected["tex"] + 0.055) / 1.055) ** 2.4)).max())
result(n_vertices=len(spec.vertices), n_faces=len(spec.faces), n_tris=n_tris, corner_vertex_ok=corner_vertex_ok,
       pos_err=pos_err, uv_err=uv_err, n_split=n_split, kind=m.kind, params=m.params, tex_err=tex_err,
       tex_shape=list(m.base_color.shape), env_kind=env.kind, env_strength=env.strength, env_rot=env.rotation_z,
       env_err=float(np.abs(env.array - expected["hdr"]).max()), normals=spec.normals is None,
       rig=[spec.cameras.n_views, spec.cameras.width, spec.cameras.height], notes=ex.notes, warnings=ex.warnings,
       roundtrip=bool(np.array_equal(back.vertices, spec.vertices) and np.array_equal(back.uvs, spec.uvs)
                      and np.array_equal(back.environment.array, env.array)),
       heavy=[k for k in sys.modules if k.split(".")[0] in ("mitsuba", "drjit", "torch")])
""")
    assert r["n_faces"] == r["n_tris"]
    assert r["corner_vertex_ok"]
    assert r["pos_err"] < 1e-5          # world-space, modifiers applied
    assert r["uv_err"] == 0.0           # exact per-corner UVs
    assert r["n_split"] > 0             # Suzanne has seams
    assert r["kind"] == "principled"
    assert r["params"]["roughness"] == pytest.approx(0.6)
    assert r["params"]["metallic"] == pytest.approx(0.1)
    assert r["params"]["specular"] == pytest.approx(0.5, abs=1e-6)  # IOR 1.5, level 0.5 -> Mitsuba's 0.5
    assert r["tex_shape"] == [4, 8, 3] and r["tex_err"] < 1e-6       # sRGB PNG -> linear, top row first
    assert r["env_kind"] == "array" and r["env_strength"] == pytest.approx(1.5)
    assert r["env_rot"] == pytest.approx(30.0)                       # Mapping (TEXTURE) Z rotation
    assert r["env_err"] == 0.0                                       # the HDR's pixels, top row first
    assert r["normals"]                                              # flat-shaded: face normals
    assert r["rig"] == [3, 24, 16]
    assert r["roundtrip"]
    assert r["heavy"] == []                                          # no mitsuba/torch in Blender's Python


def test_export_world_variants_and_notes(tmp_path):
    r = run_bpy(f"""
from mrd_blender_addon import export
out = {{}}
ob, _ = build_scene({str(tmp_path)!r}, texture=False, hdr=True, rotation_z=40.0, mapping_type="POINT")
env = export.environment_spec(bpy.context.scene.world, [])
out["point_rot"] = env.rotation_z
ob, _ = build_scene({str(tmp_path)!r}, texture=False, hdr=False, strength=2.0)
notes = []
env = export.environment_spec(bpy.context.scene.world, notes)
out["const"] = [env.kind, list(env.color), env.strength, notes]
m = export.material_spec(ob, [])
out["plain"] = [m.kind, list(m.base_color), m.params["roughness"]]
# a node the exporter cannot follow: Base Color from a Mix node -> viewport colour, with a note
mat = ob.active_material
mat.diffuse_color = (0.1, 0.2, 0.3, 1)
mix = mat.node_tree.nodes.new("ShaderNodeMix") if bpy.app.version >= (3, 4) else None
mix.data_type = "RGBA"
mat.node_tree.links.new(mix.outputs[2], mat.node_tree.nodes["Principled BSDF"].inputs["Base Color"])
notes = []
m = export.material_spec(ob, notes)
out["mix"] = [list(m.base_color), notes]
bpy.context.scene.world = None
notes = []
env = export.environment_spec(None, notes)
out["noworld"] = [env.kind, list(env.color), notes]
result(**out)
""")
    assert r["point_rot"] == pytest.approx(-40.0)  # POINT mapping rotates the other way
    kind, color, strength, notes = r["const"]
    assert kind == "constant" and color == pytest.approx([0.2, 0.4, 0.6]) and strength == pytest.approx(2.0)
    assert "no Environment Texture" in notes[0]
    assert r["plain"] == ["principled", pytest.approx([0.8, 0.3, 0.2]), pytest.approx(0.6)]
    color, notes = r["mix"]
    assert color == pytest.approx([0.1, 0.2, 0.3]) and "Mix" in notes[0] and "viewport" in notes[0]
    assert r["noworld"][0] == "constant" and "no world" in r["noworld"][2][0]


def test_export_bad_inputs_say_what_to_do(tmp_path):
    r = run_bpy(f"""
from mrd_blender_addon import export
out = {{}}
def err(fn):
    try:
        fn()
    except export.ExportError as exc:
        return str(exc)
    return None
fresh()
out["none"] = err(lambda: export.mesh_arrays(None))
cam = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
bpy.context.scene.collection.objects.link(cam)
out["camera"] = err(lambda: export.mesh_arrays(cam))
empty = bpy.data.objects.new("Empty", bpy.data.meshes.new("Empty"))
bpy.context.scene.collection.objects.link(empty)
out["empty"] = err(lambda: export.mesh_arrays(empty))
me = bpy.data.meshes.new("Verts")
me.from_pydata([(0, 0, 0), (1, 0, 0)], [(0, 1)], [])
verts = bpy.data.objects.new("Verts", me)
bpy.context.scene.collection.objects.link(verts)
out["nofaces"] = err(lambda: export.mesh_arrays(verts))
me = bpy.data.meshes.new("Open")
me.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0), (5, 5, 5)], [], [(0, 1, 2)])
openobj = bpy.data.objects.new("Open", me)
bpy.context.scene.collection.objects.link(openobj)
ex = export.export_target(openobj, bpy.context)
out["open_warnings"] = ex.warnings
out["open_start"] = err(lambda: export.start_mesh(openobj))
ob, _ = build_scene({str(tmp_path)!r}, texture=True, hdr=True)
os.remove(os.path.join({str(tmp_path)!r}, "checker.png"))
img = bpy.data.images["checker.png"]
img.reload()
out["missing_image"] = err(lambda: export.export_target(ob, bpy.context))
result(**out)
""")
    assert "select a mesh" in r["none"]
    assert "camera object, not a mesh" in r["camera"] and "Convert" in r["camera"]
    assert "empty mesh" in r["empty"]
    assert "no faces" in r["nofaces"]
    assert any("loose vertices" in w for w in r["open_warnings"])
    assert any("not a closed manifold" in w for w in r["open_warnings"])
    assert "not a closed manifold" in r["open_start"] and "icosphere" in r["open_start"]
    assert "missing" in r["missing_image"] and "checker" in r["missing_image"]
    assert "Find Missing Files" in r["missing_image"]
