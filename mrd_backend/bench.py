"""`mrd bench step`: a few optimization steps with the seconds in each part of a step, as medians and shares."""
from __future__ import annotations

import json
import resource
import statistics
import sys
import tempfile


def add_bench_parser(sub) -> None:
    from .cli import add_run_flags
    b = sub.add_parser("bench", help="benchmarks that print figures")
    bsub = b.add_subparsers(dest="what", required=True)
    s = bsub.add_parser("step", help="per-step profile of a short run")
    s.add_argument("scene", nargs="?", default="suzanne")
    s.add_argument("envmap", nargs="?", default="studio")
    s.add_argument("model", nargs="?", default="mae")
    s.add_argument("--json", action="store_true", help="print the figures as JSON")
    add_run_flags(s)
    s.set_defaults(func=cmd_bench_step)
    try:
        from .bench_models import add_bench_models_parser
        add_bench_models_parser(bsub)
    except ImportError:
        pass


def cmd_bench_step(args) -> int:
    from .cli import config_from_args
    from .optimize import optimize
    base = dict(views=4, width=128, height=128, spp=16, epochs=4, patience=0, weights="untrained",
                render_every=1000, mesh_every=1000)
    cfg = config_from_args(args, base)
    if args.out is None:
        cfg.out = tempfile.mkdtemp(prefix="mrd-bench-")
    r = optimize(cfg, log=lambda *a: print(*a, file=sys.stderr)).report
    parts = {k: v["total"] / max(1, cfg.epochs) for k, v in r["profile"].items() if k != "targets"}
    step_s = [s["seconds"] for s in r["steps"]]
    med = statistics.median(step_s[1:] or step_s)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"config": {k: r["config"][k] for k in ("scene", "envmap", "model", "views", "width", "height", "spp",
                                                    "integrator", "schedule")},
           "step_seconds_median": med, "step_seconds": step_s, "parts_seconds_per_step": parts,
           "peak_rss_mb": peak_mb, "variant": r["variant"]}
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print(f"{out['config']}  variant {r['variant']}")
    print(f"step (epoch of {cfg.views} views): median {med:.3f} s; first {step_s[0]:.3f} s (compiles kernels)")
    total = sum(parts.values()) or 1.0
    for k, v in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"  {k:12s} {v:8.3f} s/step  {100 * v / total:5.1f} %")
    print(f"peak RSS {peak_mb:.0f} MB")
    return 0
