"""Progress that tells the truth: time left from steady steps, the finishing phase, Cancel that frees the UI at once
while the worker keeps writing, Blender quitting mid-run, and Resume's launch (bpy module, stand-in optimizer)."""
import json
import os
import stat
import sys
import time

import pytest

from addon_helpers import DRIVERS, FAKE, ROOT, has_bpy, run_driver

pytestmark = [pytest.mark.blender, pytest.mark.skipif(not has_bpy(), reason="needs the bpy module")]
FAKE_ENV = {"MRD_WORKER_OPTIMIZER": FAKE, "MRD_WORKER_PYTHONPATH": str(ROOT / "tests")}
DRIVER = "addon_progress.py"   # tests/blender/addon_progress.py: the bpy side of each test


def test_time_left_leaves_out_the_start_up_and_the_finishing_phase_is_shown():
    r = run_driver(DRIVER, "time_left_and_phase", "-")
    assert "estimating time left" in r["texts"][0] and "estimating time left" in r["texts"][2]
    assert r["left"] == pytest.approx(2.0 * 94)                   # 94 steps to go at 2 s, not (83/6) s each
    assert "3m08s left" in r["texts"][-1] and "h" not in r["texts"][-1].split("left")[0].split()[-1]
    assert "finishing: final renders, evidence" in r["finishing"] and "left" not in r["finishing"]
    assert "evidence 3/8" in r["phase"]


def test_cancel_frees_the_ui_within_3_s_and_the_worker_keeps_writing(tmp_path):
    r = run_driver(DRIVER, "cancel_latency", tmp_path, MRD_FAKE_STEP_SECONDS="0.1", MRD_FAKE_FINISH_SECONDS="8",
                   **FAKE_ENV)
    print(f"Cancel -> UI free: {r['latency']:.2f} s (the stand-in worker then writes its final files for 8 s)")
    assert r["latency"] < 3.0 and r["status"] == "cancelled" and r["res_status"] == "cancelled" and r["poll"]
    assert r["alive_after_ui"]                                  # the backend was still finishing ...
    assert r["report"] == "cancelled" and r["final"]            # ... and wrote everything


def test_blender_quitting_mid_run_lets_the_worker_finish_as_cancelled(tmp_path):
    r = run_driver(DRIVER, "quit_mid_run", tmp_path, MRD_FAKE_STEP_SECONDS="0.2", MRD_FAKE_FINISH_SECONDS="1",
                   **FAKE_ENV)
    run = r["run"]
    report = os.path.join(run, "report.json")
    t0 = time.time()
    while not os.path.exists(report) and time.time() - t0 < 30:
        time.sleep(0.2)
    assert json.load(open(report))["status"] == "cancelled"
    events = [json.loads(ln) for ln in open(os.path.join(run, "events.jsonl"))]
    assert events[-1]["event"] == "done" and events[-1]["status"] == "cancelled"
    assert r["step"] < events[-1]["steps"] < 500             # it finished the step it was on, then stopped


def test_resume_starts_the_worker_on_the_run_folder_and_the_result_follows(tmp_path):
    fake = DRIVERS / "fake_resume_worker.py"
    python = tmp_path / "python"   # a stand-in backend interpreter that runs the fake worker
    python.write_text(f"#!/bin/sh\nexec {sys.executable} {fake} \"$@\"\n")
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    r = run_driver(DRIVER, "cancel_then_resume", tmp_path, python, MRD_FAKE_STEP_SECONDS="0.2",
                   MRD_TEST_ARGV=str(tmp_path / "argv.json"), **FAKE_ENV)
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert argv == ["-u", "-m", "mrd_backend.worker", "--resume", r["run"], "--exit-on-eof"]
    assert r["can"] and r["before"] == "cancelled"
    assert r["status"] == "done" and r["same_run"] and r["after"] == "done" and r["step"] == 5
    assert r["results"] == ["Suzanne.metamer"]                 # the same result object followed the resumed run
