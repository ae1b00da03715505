"""The add-on's export (bpy objects/world -> SceneSpec), compared with Blender's own data (bpy module, one process
per test)."""
import pytest

from addon_helpers import has_bpy, run_driver

pytestmark = [pytest.mark.blender, pytest.mark.skipif(not has_bpy(), reason="needs the bpy module (pip install bpy)")]
DRIVER = "addon_export.py"   # tests/blender/addon_export.py: the bpy side of each test


def test_export_monkey_with_material_and_hdri_world(tmp_path):
    r = run_driver(DRIVER, "monkey_with_material_and_hdri", tmp_path)
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
    r = run_driver(DRIVER, "world_variants", tmp_path)
    assert r["point_rot"] == pytest.approx(-40.0)  # POINT mapping rotates the other way
    kind, color, strength, notes = r["const"]
    assert kind == "constant" and color == pytest.approx([0.2, 0.4, 0.6]) and strength == pytest.approx(2.0)
    assert "no Environment Texture" in notes[0]
    assert r["plain"] == ["principled", pytest.approx([0.8, 0.3, 0.2]), pytest.approx(0.6)]
    color, notes = r["mix"]
    assert color == pytest.approx([0.1, 0.2, 0.3]) and "Mix" in notes[0] and "viewport" in notes[0]
    assert r["noworld"][0] == "constant" and "no world" in r["noworld"][2][0]


def test_export_bad_inputs_say_what_to_do(tmp_path):
    r = run_driver(DRIVER, "bad_inputs", tmp_path)
    assert "select a mesh" in r["none"]
    assert "camera object, not a mesh" in r["camera"] and "Convert" in r["camera"]
    assert "empty mesh" in r["empty"]
    assert "no faces" in r["nofaces"]
    assert any("loose vertices" in w for w in r["open_warnings"])
    assert any("not a closed manifold" in w for w in r["open_warnings"])
    assert "not a closed manifold" in r["open_start"] and "icosphere" in r["open_start"]
    assert "missing" in r["missing_image"] and "checker" in r["missing_image"]
    assert "Find Missing Files" in r["missing_image"]
