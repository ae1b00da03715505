"""Headless metamer optimization of a .blend's object: the same run as the MRD panel's "Optimize Metamer".

Run it with Blender (3.4 or newer) and the MRD add-on installed (a 4.2+ extension or the legacy add-on); without
one it uses the add-on of the checkout this script is in:

    blender -b scene.blend --python scripts/mrd_blender_batch.py -- \\
        --target Suzanne --mode shape --model resnet --views 8 --resolution 128 --spp 16 --epochs 200 \\
        --output /tmp/mrd_runs --save /tmp/result.blend

Every option is optional; an unset one keeps the value saved in the .blend (scene.mrd), so a file prepared in the
panel runs as it is: `blender -b prepared.blend --python scripts/mrd_blender_batch.py -- --save out.blend`.
`--backend-python` sets the backend's interpreter for this run (else the add-on preferences, then
$MRD_BACKEND_PYTHON). The script blocks until the run ends, applies the result (result object, step history,
textures), saves the file if asked (when the run made a result), and exits 0 when the run finished or was
cancelled, 1 when it failed (the reason once on stderr), 2 for bad arguments (an unknown object or --model, no
add-on). Ctrl+C stops the run after the current step and keeps what it wrote.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def parse(argv):
    argv = argv[argv.index("--") + 1:] if "--" in argv else []
    p = argparse.ArgumentParser(prog="blender -b FILE.blend --python mrd_blender_batch.py --",
                                description="Optimize a metamer of an object of the .blend, headless.")
    p.add_argument("--target", help="object name (default: the panel's target, else the active object)")
    p.add_argument("--mode", choices=["shape", "material"])
    p.add_argument("--start", help="'icosphere' or the name of a mesh object to start the shape from")
    p.add_argument("--icosphere-level", type=int)
    p.add_argument("--model", help="objective: mae, dual_buffer, resnet, resnet_sin, dino, clip, vggloss, lpips, vgg")
    p.add_argument("--weights", help="pretrained, untrained or the path of a checkpoint")
    p.add_argument("--views", type=int)
    p.add_argument("--resolution", type=int, help="render width and height in pixels")
    p.add_argument("--native-size", action="store_true", help="render at the model's native input size")
    p.add_argument("--spp", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--lr", type=float, help="learning rate (0: the backend's default)")
    p.add_argument("--step-lambda", type=float, help="Large Steps lambda")
    p.add_argument("--remesh", help="epochs after which to remesh, e.g. '25,50'; 'auto'; '' for never")
    for reg in ("laplacian", "edge", "area", "arap"):
        p.add_argument(f"--reg-{reg}", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--patience", type=int)
    p.add_argument("--keep-every", type=int, help="keep every Nth step as a shape key")
    p.add_argument("--output", help="folder for the run folder")
    p.add_argument("--backend-python", help="interpreter of the backend's environment")
    p.add_argument("--save", help="save the .blend with the result here")
    return p.parse_args(argv)


def _loaded_addon():
    """The package name of the MRD add-on that is registered now, if any."""
    import bpy
    if not hasattr(bpy.types.Scene, "mrd"):
        return None
    for name in list(bpy.context.preferences.addons.keys()) + list(sys.modules):
        if (name == "mrd_blender_addon" or name.endswith(".mrd_blender_addon")) and name in sys.modules:
            return name
    return None


def ensure_addon() -> str:
    """Enables the installed add-on (a 4.2+ extension `bl_ext.<repo>.mrd_blender_addon` or the legacy
    `mrd_blender_addon`); else registers this checkout's copy (scripts/.. holds mrd_blender_addon). Returns the
    add-on's package name: its modules are imported through it, never by the plain name, which an extension
    install does not have."""
    import importlib

    import addon_utils
    name = _loaded_addon()
    if name:
        return name
    for mod in addon_utils.modules():
        if mod.__name__ == "mrd_blender_addon" or mod.__name__.endswith(".mrd_blender_addon"):
            if addon_utils.enable(mod.__name__, default_set=False) is not None:
                return mod.__name__
    root = Path(__file__).resolve().parent.parent
    if not (root / "mrd_blender_addon" / "__init__.py").is_file():
        raise SystemExit("MRD: the MRD add-on is not installed and this script is not in a checkout of the project: "
                         "install the add-on (docs/blender.md, Install) or run the checkout's scripts/"
                         "mrd_blender_batch.py")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    addon = importlib.import_module("mrd_blender_addon")
    addon.register()
    return "mrd_blender_addon"


def addon_module(package: str, name: str):
    import importlib
    return importlib.import_module(f"{package}.{name}")


def apply_args(args, scene, package="mrd_blender_addon"):
    import bpy
    s = scene.mrd
    if args.model is not None:
        models = [item.identifier for item in s.bl_rna.properties["model"].enum_items]
        if args.model not in models:
            raise SystemExit(f"MRD: unknown --model {args.model!r}: use one of {', '.join(models)}")
    if args.target:
        obj = bpy.data.objects.get(args.target)
        if obj is None:
            raise SystemExit(f"MRD: no object named {args.target!r} in this file "
                             f"(objects: {', '.join(o.name for o in bpy.data.objects)})")
        if obj.type != "MESH":
            raise SystemExit(f"MRD: {args.target!r} is a {obj.type.lower()} object, not a mesh")
        s.target = obj
    if args.start:
        if args.start == "icosphere":
            s.start = "icosphere"
        else:
            obj = bpy.data.objects.get(args.start)
            if obj is None or obj.type != "MESH":
                raise SystemExit(f"MRD: --start {args.start!r} is neither 'icosphere' nor a mesh object")
            s.start, s.start_object = "object", obj
    if args.weights:
        if args.weights in ("pretrained", "untrained"):
            s.weights = args.weights
        else:
            s.weights, s.weights_file = "file", args.weights
    simple = {"mode": "mode", "icosphere_level": "icosphere_level", "model": "model", "views": "views",
              "resolution": "resolution", "spp": "spp", "epochs": "epochs", "lr": "lr", "step_lambda": "step_lambda",
              "remesh": "remesh", "reg_laplacian": "reg_laplacian", "reg_edge": "reg_edge", "reg_area": "reg_area",
              "reg_arap": "reg_arap", "seed": "seed", "patience": "patience", "keep_every": "keep_every",
              "output": "output_dir"}
    for arg, prop in simple.items():
        value = getattr(args, arg)
        if value is not None:
            try:
                setattr(s, prop, value)
            except TypeError as exc:  # e.g. an unknown model name
                raise SystemExit(f"MRD: --{arg.replace('_', '-')} {value!r}: {exc}") from None
    if args.native_size:
        s.use_native_size = True
    if args.backend_python:
        os.environ["MRD_BACKEND_PYTHON"] = args.backend_python
        p = addon_module(package, "preferences").prefs()
        if p is not None:
            p.backend_python = args.backend_python


def main(argv=None) -> int:
    import bpy
    try:
        args = parse(sys.argv if argv is None else argv)
    except SystemExit as exc:
        return 2 if exc.code else 0
    try:
        package = ensure_addon()
        apply_args(args, bpy.context.scene, package)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"MRD: add-on {package} ({Path(sys.modules[package].__file__).parent})", flush=True)
    job = addon_module(package, "job")
    job.LAST = None
    try:
        bpy.ops.mrd.optimize_metamer()
    except RuntimeError:  # the operator reported an error, which the add-on has printed already
        status = "failed"
    else:
        status = "ok"
    last = job.LAST
    if args.save and last is not None and (last.writer is not None or status == "ok"):
        bpy.ops.wm.save_as_mainfile(filepath=str(Path(args.save).resolve()))
        print(f"MRD: saved {args.save}")
    if last is None or last.status == "failed" or status == "failed":
        return 1
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    if code:
        sys.exit(code)  # Blender runs on after --python; exit with the status (needs no --python-exit-code)
