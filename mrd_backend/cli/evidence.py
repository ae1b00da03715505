"""`mrd compare` and `mrd null`: the command-line side of the evidence library (the library is mrd_backend/evidence)."""
from __future__ import annotations

from pathlib import Path

from ..evidence import compare, null
from ..evidence.panel import build_model
from ..scenes import load_scene


def _intro(module) -> str | None:
    """The second paragraph of a module's docstring: what the command is for, shown by --help."""
    return module.__doc__.split("\n\n")[1] if module.__doc__ else None


def add_compare_parser(subparsers):
    """Adds `mrd compare RUN_DIR... [--out PREFIX]`; the handler is `run_compare_command`."""
    p = subparsers.add_parser("compare", help="one table (CSV and HTML) across run folders: scenes x models",
                              description=_intro(compare))
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", default="compare",
                   help="output prefix: writes PREFIX.csv and PREFIX.html (default compare); an existing folder "
                        "gets compare.csv and compare.html inside it")
    p.set_defaults(func=run_compare_command)
    return p


def run_compare_command(args, log=print) -> int:
    csv_path, html_path = compare.write_compare(args.run_dirs, args.out)
    table = compare.compare_runs(args.run_dirs)
    for (row, col), rec in sorted(table["cells"].items()):
        log(f"{row} | {col}: {compare.cell_text(rec)}")
    log(f"wrote {csv_path} and {html_path}")
    return 0


def add_null_parser(subparsers):
    """Adds `mrd null SCENE ENVMAP MODEL` to an argparse subparsers object; the handler is `run_null_command`."""
    p = subparsers.add_parser("null", help="build the null distribution of a scene, envmap and model",
                              description=_intro(null))
    p.add_argument("scene")
    p.add_argument("envmap")
    p.add_argument("model")
    p.add_argument("--objects", type=int, default=4, help="random rotations/scales per other mesh (default 4)")
    p.add_argument("--mesh", action="append", default=[], metavar="PATH", help="another object to include (repeat)")
    p.add_argument("--no-primitives", action="store_true", help="leave out the sphere, box, torus, ... primitives")
    p.add_argument("--views", type=int, default=25)
    p.add_argument("--size", type=int, default=256, help="render size in pixels (square)")
    p.add_argument("--spp", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", default="pretrained", help="pretrained | untrained | PATH of a checkpoint")
    p.add_argument("--weights-dir", default=None)
    p.add_argument("--preprocess", default="correct", choices=("correct", "research"))
    p.add_argument("--out", default=None, help="JSON file to write (default: $MRD_NULL_DIR or ~/.cache/mrd/null/)")
    p.set_defaults(func=run_null_command)
    return p


def run_null_command(args, log=print) -> int:
    spec = load_scene(args.scene, args.envmap, views=args.views, size=args.size)
    objective = build_model(args.model, args.weights, args.weights_dir, args.preprocess, args.seed)
    others = null.default_others(args.scene, args.mesh, () if args.no_primitives else null.PRIMITIVES)
    weights = getattr(objective, "weights_used", args.weights)
    dist = null.build_null(spec, objective, others, per_mesh=args.objects, seed=args.seed, spp=args.spp,
                           scene=args.scene, envmap=args.envmap, model=args.model, weights=weights,
                           preprocess=args.preprocess, log=log)
    out = Path(args.out) if args.out else null.default_null_path(args.scene, args.envmap, args.model, weights,
                                                                 args.preprocess)
    dist.save(out)
    png = null.plot_null(dist, out.with_suffix(".png"))
    s = dist.summary()
    log(f"null distribution of {s['n']} objects: mean {s['mean']:.4f}, 95th percentile {s['p95']:.4f}, "
        f"target re-rendered {s['target_resample']:.4f}")
    log(f"wrote {out} and {png}")
    return 0
