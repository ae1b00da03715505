"""`mrd`: the command-line tool. Every user error is one line on stderr and exit status 2, never a traceback."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import scenes
from ..config import RunConfig
from ..errors import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_INTERNAL, EXIT_OK, InternalError, MRDError
from ..interrupt import cancel_on_signals
from ..objectives import objective_class, objective_names
from ..optimization.loop import optimize
from ..replicates import run_replicates
from ..scenes import environment_names, shape_scene_names
from ..scenes import materials as material_scenes
from ..scenes.materials import names as material_scene_names
from ..sweep.command import add_sweep_parser
from .bench import add_bench_parser
from .evidence import add_compare_parser, add_null_parser
from .flags import DEMO, _dims, add_run_flags, config_from_args  # noqa: F401  (re-exported)
from .weights import add_weights_parser


def _run(cfg: RunConfig | None, resume: str | None = None) -> int:
    if cfg is not None and resume is None and cfg.replicates > 1:
        with cancel_on_signals():
            return run_replicates(cfg)
    with cancel_on_signals():
        result = optimize(cfg, progress=True, resume=resume)
    r = result.report
    print(f"\n{result.status}: run folder {result.out}")
    if "chamfer" in r:
        print(f"  chamfer to target: {r['chamfer']['start']:.5f} -> {r['chamfer']['end']:.5f}")
    if "similarity" in r:
        print(f"  similarity ({r['model']}, weights {r['weights']}): {r['similarity']['start']:.4f} -> "
              f"{r['similarity']['end']:.4f}")
    verdict = (r.get("evidence") or {}).get("verdict") or {}
    if verdict.get("sentence"):
        print(f"  verdict [{verdict.get('outcome')}]: {verdict['sentence']}")
    for name in ("report.html", "report.json"):
        if (Path(result.out) / name).exists():
            print(f"  open {Path(result.out) / name}")
            break
    if result.status == "cancelled":
        print(f"  continue it with: mrd optimize --resume {result.out}")
        return EXIT_CANCELLED
    return EXIT_OK


def cmd_optimize(args) -> int:
    if args.resume:
        given = [k for k in ("scene", "envmap", "model") if getattr(args, k, None)]
        given += [f"--{k.replace('_', '-')}" for k, v in vars(args).items()
                  if v is not None and k not in ("resume", "func", "command", "scene", "envmap", "model", "epochs")]
        if given:
            raise MRDError(f"--resume continues a run with its own configuration: drop {', '.join(given)} "
                           "(only -e/--epochs may change)")
        return _run({"epochs": args.epochs} if args.epochs is not None else None, resume=args.resume)
    missing = [k for k in ("scene", "envmap", "model") if not getattr(args, k, None)]
    if missing:
        raise MRDError(f"mrd optimize needs SCENE ENVMAP MODEL (missing: {' '.join(missing).upper()}), "
                       "or --resume RUN_DIR")
    return _run(config_from_args(args))


def cmd_demo(args) -> int:
    """The bundled default: a shape metamer of Suzanne for a trained EfficientNet-Lite0, small enough for a CPU (a few
    minutes). Missing weights stop it with one line (never a silent switch to an untrained network); `--weights
    untrained` runs the untrained network on purpose, as a labelled control condition."""
    cfg = config_from_args(args, DEMO)
    if cfg.weights == "untrained":
        print(f"note: --weights untrained: {cfg.model} with seeded random weights, a CONTROL condition (the report "
              "records weights = untrained)", file=sys.stderr)
    return _run(cfg)


def cmd_scenes(args) -> int:
    print("shape scenes:    " + ", ".join(scenes.shape_scene_names()) + "  (or the path of a .ply/.obj mesh)")
    print("material scenes: " + (", ".join(material_scenes.names()) or "(none)"))
    print("environments:    " + ", ".join(scenes.environment_names()) + "  (or the path of an .hdr/.exr file)")
    models = []
    for n in objective_names():
        size = objective_class(n).native_size
        models.append(f"{n} ({size} px)" if size else n)
    print("models:          " + ", ".join(models))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mrd", description="Model metamers rendered differentiably (Mitsuba 3)")
    sub = p.add_subparsers(dest="command", required=True)
    o = sub.add_parser("optimize", help="optimize a shape or material metamer")
    o.add_argument("scene", nargs="?", help=f"bundled scene ({', '.join(shape_scene_names() + material_scene_names())}"
                                            ") or a mesh path (.ply, .obj, .glb, ...)")
    o.add_argument("envmap", nargs="?", help=f"environment ({', '.join(environment_names())}) or an .hdr/.exr path")
    o.add_argument("model", nargs="?", help=f"objective: {', '.join(objective_names())}")
    o.add_argument("--resume", metavar="RUN_DIR", help="continue a cancelled, killed or failed run from its last "
                   "checkpoint, to the end its config names (-e/--epochs may extend it)")
    add_run_flags(o)
    o.set_defaults(func=cmd_optimize)
    d = sub.add_parser("demo", help="run the bundled default (a few minutes on a CPU)")
    d.add_argument("--model", help=f"objective (default {DEMO['model']}: a trained ImageNet classifier)")
    d.add_argument("--envmap", help=f"environment (default {DEMO['envmap']})")
    add_run_flags(d)
    d.set_defaults(func=cmd_demo)
    s = sub.add_parser("scenes", help="list scenes, environments and models")
    s.set_defaults(func=cmd_scenes)
    _optional_commands(sub)
    return p


def _optional_commands(sub) -> None:
    """Commands that live in their own modules (bench, weights, evidence)."""
    for add in (add_bench_parser, add_weights_parser, add_null_parser, add_compare_parser, add_sweep_parser):
        add(sub)


def main(argv=None) -> int:
    """Exit status: 0 done, 1 internal error, 2 bad input, 3 cancelled (Ctrl+C, SIGTERM, SIGHUP; resumable)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or EXIT_OK
    except InternalError as exc:
        print(f"mrd: error: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    except MRDError as exc:
        print(f"mrd: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("mrd: interrupted", file=sys.stderr)
        return EXIT_CANCELLED

