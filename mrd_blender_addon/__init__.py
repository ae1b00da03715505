"""MRD for Blender: optimize model metamers of a mesh from the 3D viewport.

A thin add-on: it exports the target to the backend's SceneSpec, runs `python -m mrd_backend.worker` in the
backend's own Python environment (set in the preferences) and applies the steps it streams back. Blender's Python
only needs numpy; mitsuba and torch live in the backend's environment.
"""

bl_info = {
    "name": "MRD: Model Metamers",
    "author": "MRD contributors",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "View3D > Sidebar (N) > MRD",
    "description": "Optimize shape and material metamers of a mesh for vision models (Mitsuba 3 backend)",
    "doc_url": "https://github.com/mrd-project/mrd/blob/main/docs/blender.md",
    "category": "Object",
}

_MODULES = ("properties", "preferences", "operators", "panel")


def _modules():
    import importlib
    return [importlib.import_module(f"{__package__}.{m}") for m in _MODULES]


def _on_load_pre(*_args):
    from . import job
    job.shutdown()


def _on_exit():
    from . import job
    job.stop_worker()  # no bpy calls here: Blender is tearing down


def register():
    import atexit

    import bpy
    for m in _modules():
        m.register()
    handler = bpy.app.handlers.persistent(_on_load_pre)
    if handler not in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.append(handler)
    atexit.register(_on_exit)


def unregister():
    import atexit

    import bpy
    from . import job
    job.shutdown()
    atexit.unregister(_on_exit)
    for h in list(bpy.app.handlers.load_pre):
        if getattr(h, "__name__", "") == "_on_load_pre" and getattr(h, "__module__", "") == __name__:
            bpy.app.handlers.load_pre.remove(h)
    for m in reversed(_modules()):
        m.unregister()
