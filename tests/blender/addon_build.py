"""Driver of tests/test_addon_build.py (bpy module side): the 4.2+ extension installed into Blender 5, and the
panel's model list against the backend's registry.

    python tests/blender/addon_build.py extension_install EXTENSION_ZIP
    python tests/blender/addon_build.py objective_list
"""
import importlib

import bpy
from driver import main, result


def extension_install(ext):
    bpy.ops.extensions.package_install_files(filepath=ext, repo="user_default", enable_on_install=True)
    mods = [m for m in bpy.context.preferences.addons.keys() if "mrd" in m]
    mod = importlib.import_module(mods[0])
    client = importlib.import_module(mods[0] + ".client")
    bpy.ops.mesh.primitive_monkey_add()
    export = importlib.import_module(mods[0] + ".export")
    spec = export.scene_spec(bpy.context.active_object)
    result(mods=mods, has_prop=hasattr(bpy.types.Scene, "mrd"), backend=client.backend().__name__,
           file=mod.__file__, n=len(spec.vertices))


def objective_list():
    from mrd_backend.objectives import REGISTRY, objective_class
    from mrd_blender_addon import properties
    result(addon={k: s for k, _, _, s in properties.MODELS},
           backend={k: objective_class(k).native_size for k in REGISTRY})


if __name__ == "__main__":
    main({f.__name__: f for f in (extension_install, objective_list)})
