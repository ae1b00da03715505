"""The panel reads at the default sidebar width (short labels, text wrapped to the region), and material runs take
their texture size, parameters and start from the panel (bpy module)."""

import pytest

from addon_helpers import FAKE, ROOT, has_bpy, run_driver

pytestmark = [pytest.mark.blender, pytest.mark.skipif(not has_bpy(), reason="needs the bpy module")]
FAKE_ENV = {"MRD_WORKER_OPTIMIZER": FAKE, "MRD_WORKER_PYTHONPATH": str(ROOT / "tests")}

DRIVER = "addon_panel.py"   # tests/blender/addon_panel.py: the bpy side of each test


def test_panel_fits_the_default_sidebar_width(tmp_path):
    r = run_driver(DRIVER, "sidebar_width", tmp_path, **FAKE_ENV)
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
    r = run_driver(DRIVER, "material_settings", tmp_path, **FAKE_ENV)
    target, custom = r["cfgs"]
    assert target["texture_size"] == [64, 32] and custom["texture_size"] == [40, 20]
    assert target["params"] == ["base_color", "roughness"] and target["init"] == "gray"
    assert r["notes"][0] == ["material textures of 64x32 (the target's)"]
