"""GUI smoke test: Blender's interface (under Xvfb) goes through a tiny run the way a user does, with screenshots.

    xvfb-run -a -s "-screen 0 1280x800x24" blender --factory-startup START.blend \
        --python tests/blender/gui_smoke.py -- OUT RUNS

START.blend: Blender's factory scene saved as a file (opening a file skips the splash screen).

The MRD add-on must be installed and enabled (the test installs the legacy zip into BLENDER_USER_SCRIPTS). A timer
drives the real window manager: it opens the 3D view's sidebar with the MRD panel, presses Optimize Metamer (the
operator the button runs, in the 3D view's sidebar context), lets the interactive timer path apply the steps,
shows the step history, then starts a second run and presses Cancel, timing how long the UI stays busy. Every
stage is a screenshot in OUT; OUT/summary.json says what happened; Blender quits with status 0.

The sidebar's tab cannot be chosen from Python in Blender 3.4, so the driver moves the MRD panels into the "Item"
tab that a fresh sidebar shows, and takes the Item tab's Transform panel away (test-only re-registrations).
"""
import json
import os
import sys
import time
import traceback

import bpy

ARGS = sys.argv[sys.argv.index("--") + 1:]
OUT, RUNS = ARGS[0], ARGS[1]
os.makedirs(OUT, exist_ok=True)
SUMMARY = {"stages": [], "errors": []}


def view3d():
    win = bpy.context.window_manager.windows[0]
    area = next(a for a in win.screen.areas if a.type == "VIEW_3D")
    region = next(r for r in area.regions if r.type == "UI")
    return win, area, region


def shot(name):
    win, area, _ = view3d()
    path = os.path.join(OUT, name)
    with bpy.context.temp_override(window=win, area=area):
        bpy.ops.screen.screenshot(filepath=path)
    SUMMARY["stages"].append(name)


def press(op, **kw):
    """Runs what a sidebar button runs, in the sidebar's context."""
    win, area, region = view3d()
    with bpy.context.temp_override(window=win, area=area, region=region):
        return list(op(**kw))


def setup():
    import importlib

    import addon_utils
    mod = next((m for m in bpy.context.preferences.addons.keys() if m.endswith("mrd_blender_addon")), None)
    if mod is None:
        mod = "mrd_blender_addon"
        if addon_utils.enable(mod, default_set=True, handle_error=None) is None:
            raise RuntimeError("the MRD add-on is not installed (BLENDER_USER_SCRIPTS/addons)")
    panel = importlib.import_module(mod + ".panel")
    for cls in panel.classes:
        bpy.utils.unregister_class(cls)
    for cls in panel.classes:
        cls.bl_category = "Item"
        bpy.utils.register_class(cls)
    if hasattr(bpy.types, "VIEW3D_PT_transform"):   # the Item tab's own panel would push ours out of the picture
        bpy.utils.unregister_class(bpy.types.VIEW3D_PT_transform)
    win, area, region = view3d()
    area.spaces.active.show_region_ui = True
    s = bpy.context.scene.mrd
    s.target = bpy.data.objects["Cube"]
    s.views, s.resolution, s.spp, s.epochs, s.keep_every, s.output_dir = 2, 32, 4, 12, 1, RUNS
    SUMMARY["panel_width_px"] = region.width
    SUMMARY["text_width_chars"] = panel.text_width(bpy.context)
    return importlib.import_module(mod + ".job")


STATE = {"stage": "setup", "t": time.time()}


def tick():
    try:
        return _tick()
    except Exception:
        SUMMARY["errors"].append(traceback.format_exc())
        finish()
        return None


def _tick():
    st = STATE
    now = time.time()
    SUMMARY.setdefault("timer_gaps", []).append(round(now - st.get("last", now), 3))
    st["last"] = now
    if st["stage"] == "setup":
        st["job"] = setup()
        st["stage"], st["t"] = "panel", time.time()
        return 1.0
    job = st["job"]
    if st["stage"] == "panel":
        shot("01_panel.png")
        SUMMARY["optimize"] = press(bpy.ops.mrd.optimize_metamer)
        st["stage"], st["t"] = "running", time.time()
        return 0.3
    if st["stage"] == "running":
        j = job.CURRENT or job.LAST
        if j is not None and j.step is not None and "02_running.png" not in SUMMARY["stages"]:
            SUMMARY["running_text"] = j.progress_text()
            shot("02_running.png")
        if job.CURRENT is None and job.LAST is not None:
            SUMMARY["first_status"] = job.LAST.status
            SUMMARY["first_steps"] = job.LAST.step
            shot("03_done.png")
            res = bpy.data.objects.get(job.LAST.writer.name)
            bpy.context.view_layer.objects.active = res
            SUMMARY["show_steps"] = press(bpy.ops.mrd.show_steps, show=True)
            bpy.context.scene.frame_set(bpy.context.scene.frame_start + 5)
            st["stage"] = "steps"
            return 1.0
        if time.time() - st["t"] > 120:
            SUMMARY["errors"].append("the first run did not end within 120 s")
            finish()
            return None
        return 0.3
    if st["stage"] == "steps":
        shot("04_steps.png")
        press(bpy.ops.mrd.show_steps, show=False)
        bpy.context.scene.mrd.epochs = 500
        press(bpy.ops.mrd.optimize_metamer)
        st["stage"], st["t"] = "second", time.time()
        return 0.3
    if st["stage"] == "second":
        j = job.CURRENT
        if j is not None and j.step is not None and j.step >= 2 and "cancel_pressed" not in st:
            press(bpy.ops.mrd.cancel)
            st["cancel_pressed"] = time.time()
            SUMMARY["cancel_at_step"] = j.step
        if "cancel_pressed" in st and (job.CURRENT is None or not job.CURRENT.active):
            SUMMARY["cancel_latency_s"] = time.time() - st["cancel_pressed"]
            SUMMARY["cancel_gaps"] = SUMMARY["timer_gaps"][-8:]
            SUMMARY["second_status"] = job.LAST.status
            SUMMARY["resume_poll"] = bpy.ops.mrd.resume.poll()
            shot("05_cancelled.png")
            finish()
            return None
        if time.time() - st["t"] > 120:
            SUMMARY["errors"].append("the second run was not cancelled within 120 s")
            finish()
            return None
        return 0.1
    return None


def finish():
    with open(os.path.join(OUT, "summary.json"), "w") as fh:
        json.dump(SUMMARY, fh, indent=1, default=str)
    bpy.app.timers.register(lambda: bpy.ops.wm.quit_blender() and None, first_interval=0.5)


bpy.app.timers.register(tick, first_interval=2.0)
