"""The add-on inside Blender (bpy module, background mode): register/unregister, Optimize Metamer with a fast
stand-in optimizer (the real loop is in test_addon_e2e.py), the interactive timer path, cancel, and bad inputs."""
import pytest

from addon_helpers import FAKE, ROOT, has_bpy, run_driver

pytestmark = [pytest.mark.blender, pytest.mark.skipif(not has_bpy(), reason="needs the bpy module (pip install bpy)")]
FAKE_ENV = {"MRD_WORKER_OPTIMIZER": FAKE, "MRD_WORKER_PYTHONPATH": str(ROOT / "tests")}

DRIVER = "addon_ops.py"   # tests/blender/addon_ops.py: the bpy side of each test


def test_register_unregister_leaves_nothing_behind(tmp_path):
    r = run_driver(DRIVER, "register_unregister", tmp_path, MRD_FAKE_STEP_SECONDS="0.2", **FAKE_ENV)
    assert r["registered"] == ["MRD_OT_optimize_metamer", "MRD_OT_cancel", "VIEW3D_PT_mrd"]
    assert r["has_prop"] and all(r["ops"])
    assert r["left"] == [] and not r["prop_after"]
    assert r["load_pre"] == 0 and r["atexit"] == 0 and not r["timer"]
    assert not r["worker_alive"] and r["threads"] == []


def test_optimize_metamer_shape_run_applies_steps_and_history(tmp_path):
    r = run_driver(DRIVER, "shape_run", tmp_path, MRD_FAKE_REMESH_AT="2", **FAKE_ENV)
    assert r["ret"] == ["FINISHED"] and r["status"] == "done"
    # two topologies (start sphere, then the remeshed one): two step objects with shape keys
    assert len(r["segs"]) == 2
    k0, k1 = (r["keys"][n] for n in r["segs"])
    assert k0 == ["Basis", "step 000002"]          # steps 0 (basis) and 2 (kept: remesh step)
    assert k1 == ["Basis", "step 000004", "step 000005"]  # 3 (basis), 4 (keep_every 2), 5 (last)
    assert r["scrub_err"] < 1e-6 and r["visible"] == [True, True]
    assert r["final_err"] < 1e-6 and r["n_res"] == 162 and not r["has_shape_keys"]  # final: an ordinary mesh
    assert r["material"] == "MonkeyMat"
    assert r["step_files"] == 6
    new = r["new"]
    assert new["objects"] == sorted(["Suzanne.metamer", *r["segs"]])
    assert new["materials"] == [] and new["collections"] == ["Suzanne.metamer steps"]
    assert new["images"] == ["Suzanne.metamer render"]
    assert not r["undone"] and r["redone"]  # undo removes the finished result, redo brings it back


def test_material_run_updates_textures_and_values(tmp_path):
    r = run_driver(DRIVER, "material_run", tmp_path, **FAKE_ENV)
    assert r["mat"] == "Suzanne.metamer" and r["target_mat"] == "MonkeyMat"  # the target's material is untouched
    assert r["base"] == pytest.approx(0.2, abs=1e-4)   # last step: 0.1 * 2 (saved as half-float EXR)
    assert r["metallic"] == pytest.approx(0.02)
    assert r["rough_linked"] and r["colorspace"] == "Non-Color"
    assert r["saved"].endswith(".exr")     # textures saved into the run folder, so they survive the .blend
    assert r["n_vertices"] == r["target_vertices"] and r["uv"]


def test_interactive_timer_path_and_cancel_keeps_steps(tmp_path):
    r = run_driver(DRIVER, "timer_and_cancel", tmp_path, MRD_FAKE_STEP_SECONDS="0.15", **FAKE_ENV)
    assert r["status"] == "cancelled" and r["last"] and r["current"] is None and r["poll"]
    assert 3 <= r["step"] + 1 < 200
    assert len(r["files"]) == r["step"] + 1 and len(r["keys"]) == r["step"] + 1  # Basis + one key per step
    assert max(r["times"]) < 0.5


def test_bad_inputs_give_clear_reports_and_leave_the_file_untouched(tmp_path):
    r = run_driver(DRIVER, "bad_inputs", tmp_path, **FAKE_ENV)
    def check(key, *words, untouched=True):
        ret, msg, same = r[key]
        assert ret in (["error"], ["CANCELLED"]), (key, ret, msg)
        for w in words:
            assert w in msg, (key, msg)
        if untouched:
            assert same, f"{key} changed the file"
    check("no_selection", "nothing is selected")
    check("non_mesh", "camera object, not a mesh")
    check("empty_mesh", "empty mesh")
    check("missing_image", "missing", "Find Missing Files")
    check("nonmanifold_start", "not a closed manifold", "icosphere")
    check("bad_remesh", "not a list of epochs")
    check("missing_backend", "does not exist", "preferences")
    check("broken_backend", "without finishing", "libtorch_cpu.so")
    check("backend_error", "no pretrained weights for resnet")
    msg, status, step, new = r["crash"]
    assert "crashed (exit code 3)" in msg and "simulated crash" in msg
    assert status == "failed" and step == 1  # steps 0 and 1 were applied and kept
    assert new == ["Suzanne.metamer", "Suzanne.metamer steps.00"]


def test_panels_and_preferences_draw(tmp_path):
    r = run_driver(DRIVER, "panels_and_preferences", tmp_path, **FAKE_ENV)
    main = r["VIEW3D_PT_mrd"]
    assert ["operator", "mrd.optimize_metamer"] in main
    props = {c[1] for c in main if c[0] == "prop"}
    assert {"target", "mode", "start", "icosphere_level", "model", "views", "spp", "epochs", "lr", "resolution",
            "step_lambda", "remesh", "output_dir"} <= props
    assert {c[1] for c in r["VIEW3D_PT_mrd_advanced"] if c[0] == "prop"} >= {"reg_laplacian", "reg_edge", "reg_area",
                                                                             "reg_arap", "keep_every"}
    assert {"start_object", "weights", "weights_file"} <= {c[1] for c in r["shape_object"] if c[0] == "prop"}
    assert any(c[0] == "label" and "MRD done" in c[1] for c in r["after"])
    assert ["operator", "mrd.check_backend"] in r["prefs"] and ["operator", "mrd.install_backend"] in r["prefs"]


def test_preferences_check_and_install_report_problems(tmp_path):
    r = run_driver(DRIVER, "preferences_check_and_install", tmp_path)
    ok, text = r["check"]
    assert ok == "no" and "does not exist" in text
    venv, pip_up, pip = r["cmds"]
    assert venv[1:3] == ["-m", "venv"] and pip[1:4] == ["-m", "pip", "install"]
    assert any(x.startswith("mitsuba") for x in r["reqs"]) and any(x.startswith("torch") for x in r["reqs"])
    assert r["offline"] == "" or "offline mode" in r["offline"]
    ok, text, log = r["install"]
    assert ok == "no" and "failed (exit 1)" in text and "backend-install.log" in text
    assert "No module named venv" in log


def test_run_folders_started_in_the_same_second_get_the_backends_suffixes(tmp_path):
    r = run_driver(DRIVER, "run_folder_names", tmp_path)
    assert r["names"] == ["Suzanne-shape-mae-20260102-030405", "Suzanne-shape-mae-20260102-030405-2",
                          "Suzanne-shape-mae-20260102-030405-3"]
