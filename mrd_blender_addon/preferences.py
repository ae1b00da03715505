"""Add-on preferences (per machine, not in the .blend): the backend's Python, with a button that checks it and says
what is missing, and a button that creates a separate virtual environment and installs the backend's packages
there. Nothing is ever installed into Blender's own Python."""

import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty

from . import client

ENV_PYTHON = "MRD_BACKEND_PYTHON"


def venv_python(venv: str | Path) -> Path:
    venv = Path(venv)
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def default_venv() -> Path:
    try:
        return Path(bpy.utils.user_resource("DATAFILES", path="mrd", create=False)) / "backend-venv"
    except TypeError:  # Blender < 2.91 signature
        return Path(bpy.utils.user_resource("DATAFILES", "mrd")) / "backend-venv"


def prefs(context=None):
    context = context or bpy.context
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon is not None else None


def backend_python(context=None) -> str | None:
    """The interpreter to run the worker with: the preference, else $MRD_BACKEND_PYTHON, else the environment
    the install button creates, else a development checkout's .venv."""
    p = prefs(context)
    if p is not None and p.backend_python:
        return bpy.path.abspath(p.backend_python)
    if os.environ.get(ENV_PYTHON):
        return os.environ[ENV_PYTHON]
    for cand in (venv_python(p.venv_dir) if p is not None and p.venv_dir else None, venv_python(default_venv())):
        if cand is not None and cand.exists():
            return str(cand)
    root = client.backend_root()
    if root is not None and venv_python(root / ".venv").exists():
        return str(venv_python(root / ".venv"))
    return None


def worker_env_extra(context=None) -> dict:
    p = prefs(context)
    out = {}
    if p is not None and p.variant != "auto":
        out["MRD_VARIANT"] = p.variant
    return out


def requirements() -> list[str]:
    """The backend's packages: requirements.txt in the archive, else the checkout's pyproject.toml."""
    bundled = client.ADDON_DIR / "requirements.txt"
    if bundled.is_file():
        return [ln.strip() for ln in bundled.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    root = client.backend_root()
    pyproject = root / "pyproject.toml" if root else None
    if pyproject is None or not pyproject.is_file():
        return []
    text = pyproject.read_text()
    m = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.S | re.M)
    return re.findall(r'"([^"]+)"', m.group(1)) if m else []


def constraints_file() -> Path | None:
    for p in (client.ADDON_DIR / "constraints.txt",
              (client.backend_root() or client.ADDON_DIR) / "scripts" / "constraints.txt"):
        if p.is_file():
            return p
    return None


def base_python_default() -> str:
    for name in ("python3.11", "python3.12", "python3.10", "python3"):
        path = shutil.which(name)
        if path:
            return path
    return sys.executable


def install_commands(venv: Path, base_python: str) -> list[list[str]]:
    py = str(venv_python(venv))
    reqs = requirements()
    if not reqs:
        raise RuntimeError("cannot find the backend's package list (requirements.txt or pyproject.toml): "
                           "reinstall the add-on from the archive build_addon.py writes")
    pip = [py, "-m", "pip", "install", "--upgrade"]
    cons = constraints_file()
    if cons is not None:
        pip += ["-c", str(cons)]
    return [[base_python, "-m", "venv", str(venv)], [py, "-m", "pip", "install", "--upgrade", "pip"], pip + reqs]


# -- background tasks (a thread runs a subprocess; a timer brings the result to the main thread) ---------------
class Task:
    def __init__(self, name, fn):
        self.name, self.fn = name, fn
        self.result = None
        self.thread = threading.Thread(target=self._run, name=f"mrd-{name}", daemon=True)

    def _run(self):
        try:
            self.result = self.fn()
        except Exception as exc:
            self.result = {"ok": False, "message": f"{self.name} failed: {exc}"}

    def start(self):
        self.thread.start()
        return self


TASKS: dict[str, Task] = {}


def _store(result: dict, field: str):
    p = prefs()
    if p is None:
        return
    lines = [result.get("message", "")] + [f"missing: {m}" for m in result.get("missing", [])[:12]]
    if result.get("ok") and result.get("models"):
        lines.append("models: " + ", ".join(f"{k} ({v if v else 'any'} px)" if not isinstance(v, str) else
                                            f"{k} ({v})" for k, v in result["models"].items()))
    setattr(p, field, "\n".join(dict.fromkeys(x for x in lines if x)))
    p.check_ok = "yes" if result.get("ok") else "no"


def _poll_tasks():
    for key, task in list(TASKS.items()):
        if not task.thread.is_alive():
            TASKS.pop(key)
            _store(task.result or {"ok": False, "message": f"{key}: no result"}, "check_result")
            _redraw_prefs()
    return 0.5 if TASKS else None


def _redraw_prefs():
    wm = bpy.context.window_manager
    for win in getattr(wm, "windows", []):
        for area in win.screen.areas:
            if area.type == "PREFERENCES":
                area.tag_redraw()


def _start_task(key, fn, report) -> bool:
    if key in TASKS:
        report({"WARNING"}, f"{key} is already running")
        return False
    if bpy.app.background:
        t = Task(key, fn)
        t._run()
        _store(t.result, "check_result")
        return True
    TASKS[key] = Task(key, fn).start()
    if not bpy.app.timers.is_registered(_poll_tasks):
        bpy.app.timers.register(_poll_tasks, first_interval=0.5)
    return True


def stop_tasks():
    for t in TASKS.values():
        t.thread.join(timeout=0.1)
    TASKS.clear()
    if bpy.app.timers.is_registered(_poll_tasks):
        bpy.app.timers.unregister(_poll_tasks)


class MRD_OT_check_backend(bpy.types.Operator):
    """Run the backend's Python and report what it has and what is missing"""
    bl_idname = "mrd.check_backend"
    bl_label = "Check backend"

    def execute(self, context):
        python = backend_python(context)
        p = prefs(context)
        if p is not None:
            p.check_result = f"checking {python} ..."
            p.check_ok = ""
        _start_task("backend check", lambda: client.check_backend(python), self.report)
        if bpy.app.background and p is not None:
            level = {"INFO"} if p.check_ok == "yes" else {"ERROR"}
            self.report(level, p.check_result.splitlines()[0] if p.check_result else "no result")
            return {"FINISHED"} if p.check_ok == "yes" else {"CANCELLED"}
        return {"FINISHED"}


class MRD_OT_install_backend(bpy.types.Operator):
    """Create a separate Python environment for the backend and install its packages there (a few GB download;
    Blender's own Python is not touched)"""
    bl_idname = "mrd.install_backend"
    bl_label = "Create backend environment"

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event)

    def execute(self, context):
        if not getattr(bpy.app, "online_access", True):
            self.report({"ERROR"}, "Blender is in offline mode: allow online access (Preferences > System), or "
                                   "create the environment yourself and set the backend Python")
            return {"CANCELLED"}
        p = prefs(context)
        venv = Path(bpy.path.abspath(p.venv_dir)) if p is not None and p.venv_dir else default_venv()
        base = bpy.path.abspath(p.base_python) if p is not None and p.base_python else base_python_default()
        try:
            commands = install_commands(venv, base)
        except RuntimeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        log = venv.parent / "backend-install.log"

        def run():
            venv.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "w") as fh:
                for cmd in commands:
                    fh.write("$ " + " ".join(cmd) + "\n")
                    fh.flush()
                    rc = subprocess.call(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=client.worker_env())
                    if rc != 0:
                        return {"ok": False, "message": f"'{' '.join(cmd[:4])} ...' failed (exit {rc}); see {log}"}
            info = client.check_backend(str(venv_python(venv)))
            info["message"] = f"installed into {venv}. " + info.get("message", "")
            return info

        if p is not None:
            p.check_result = f"installing into {venv} (log: {log}) ..."
            if not p.backend_python:
                p.backend_python = str(venv_python(venv))
        _start_task("backend install", run, self.report)
        self.report({"INFO"}, f"installing the backend into {venv}; progress in {log}")
        return {"FINISHED"}


class MRDPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    backend_python: StringProperty(
        name="Backend Python", subtype="FILE_PATH",
        description="Python interpreter of the environment with mitsuba and torch (empty: $MRD_BACKEND_PYTHON, "
                    "then the environment the button below creates)")
    venv_dir: StringProperty(name="Environment folder", subtype="DIR_PATH",
                             description="Where 'Create backend environment' puts the virtual environment "
                                         "(empty: Blender's user data folder)")
    base_python: StringProperty(name="Base Python", subtype="FILE_PATH",
                                description="Python 3.10-3.12 used to create the environment (empty: python3.11 "
                                            "on PATH, else Blender's)")
    weights_dir: StringProperty(name="Weights folder", subtype="DIR_PATH",
                                description="Pretrained network weights (empty: $MRD_WEIGHTS_DIR or ~/.cache/mrd)")
    variant: EnumProperty(name="Device", items=[
        ("auto", "Automatic", "CUDA when there is a GPU, else the CPU"),
        ("cuda_ad_rgb", "CUDA", "NVIDIA GPU"), ("llvm_ad_rgb", "CPU", "CPU (LLVM)")], default="auto")
    check_result: StringProperty(name="Check", default="")
    check_ok: StringProperty(default="")

    def draw(self, context):
        layout = self.layout
        col = layout.column()
        col.prop(self, "backend_python")
        found = backend_python(context)
        if not self.backend_python:
            col.label(text=f"Using: {found}" if found else "No backend Python found", icon="INFO")
        row = col.row()
        row.operator("mrd.check_backend", icon="CHECKMARK")
        row.operator("mrd.install_backend", icon="IMPORT")
        box = col.box()
        icon = {"yes": "CHECKMARK", "no": "ERROR"}.get(self.check_ok, "QUESTION")
        lines = (self.check_result or "Not checked yet").splitlines()
        for i, line in enumerate(lines[:16]):
            for j, chunk in enumerate(textwrap.wrap(line, 110)):
                box.label(text=chunk, icon=icon if i == 0 and j == 0 else "NONE")
        col.separator()
        col.prop(self, "venv_dir")
        col.prop(self, "base_python")
        col.prop(self, "weights_dir")
        col.prop(self, "variant")


classes = (MRD_OT_check_backend, MRD_OT_install_backend, MRDPreferences)


def register():
    for c in classes:
        bpy.utils.register_class(c)


def unregister():
    stop_tasks()
    for c in reversed(classes):
        bpy.utils.unregister_class(c)
