"""A run survives Ctrl+Z while it goes (its objects are tracked by identity and rebuilt from the step files), and a
second run of the same target is placed beside the first (bpy module, stand-in optimizer)."""
import pytest

from addon_helpers import FAKE, ROOT, has_bpy, run_driver

pytestmark = [pytest.mark.blender, pytest.mark.skipif(not has_bpy(), reason="needs the bpy module")]
FAKE_ENV = {"MRD_WORKER_OPTIMIZER": FAKE, "MRD_WORKER_PYTHONPATH": str(ROOT / "tests")}

DRIVER = "addon_undo.py"   # tests/blender/addon_undo.py: the bpy side of each test


def test_undo_during_a_run_keeps_its_whole_history(tmp_path):
    r = run_driver(DRIVER, "undo_during_a_run", tmp_path, MRD_FAKE_STEP_SECONDS="0.1", **FAKE_ENV)
    assert r["status"] == "done", r["_stderr"][-2000:]
    assert r["undone"] == []                                  # the undo did remove the run's objects
    assert r["results"] == ["Suzanne.metamer"] and r["step"] == 9   # re-made under its own name, to the end
    assert r["keys"] == ["Basis"] + [f"step {i:06d}" for i in range(1, 10)]   # no step lost (0 is the Basis)
    assert r["cols"] == ["Suzanne.metamer steps"] and r["orphans"] == r["cols"]   # one steps collection
    assert r["shown"]                                         # Show steps finds the history


def test_a_renamed_result_is_still_the_runs_and_a_second_run_goes_beside_the_first(tmp_path):
    r = run_driver(DRIVER, "renamed_then_second_run", tmp_path, **FAKE_ENV)
    assert r["s1"] == "done" and r["s2"] == "done"
    assert r["first"] == "Renamed" and r["steps"] == 3, r["objs"]        # followed by identity, not re-created
    (n1, x1, st1), (n2, x2, st2) = sorted(r["res"], key=lambda t: t[1])
    assert (n1, n2) == ("Renamed", "Suzanne.metamer") and st1 == st2 == "done"
    assert x2 == pytest.approx(2 * x1, abs=1e-3) and x1 > 0           # the second run one slot further, not on the first
