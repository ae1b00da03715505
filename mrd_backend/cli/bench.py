"""`mrd bench step` and `mrd bench memory`: figures about the run loop's speed and memory.

`mrd bench step` runs a short optimization with a synchronizing, kernel-counting Profile (see optimization/timing.py) and the
integrator instrumented from outside (no change to a normal run): per step (= epoch, as in report.json) the seconds
in each part as medians and shares, the kernels launched and compiled per step and in which part, and peak memory.
The first step compiles kernels and is left out of the medians.

`mrd bench demo` runs a default demo and prints the end-of-run evidence's share of its wall time (at most 15 %).

`mrd bench memory` runs many tiny steps and prints the resident memory at two of them: it must stay flat.
"""
from __future__ import annotations

import functools
import json
import statistics
import sys
import tempfile
import time

from ..machine import describe as describe_machine
from ..machine import one_line as machine_line

# Parts, in the order they are printed: (profile name, label). Names with "/" are nested in the one before them.
PARTS = [
    ("apply", "Large Steps solve + mesh refresh"),
    ("render", "primal render"),
    ("objective", "objective: network forward + loss"),
    ("backward", "backward, all of it"),
    ("backward/render_backward", "  render backward"),
    ("backward/render_backward/silhouette_setup", "    primary silhouette set-up"),
    ("backward/render_backward/guiding_setup", "    indirect guiding set-up"),
    ("network_backward", "  network + loss backward"),
    ("step", "parameter update (Adam step)"),
    ("similarity", "similarity (logging)"),
    ("remesh", "remesh"),
    ("log", "logging and I/O, all of it"),
    ("log/panel", "  cross-model panel (pixel runs)"),
    ("log/forward", "  forward-gradient images"),
    ("other", "everything else"),
]
# Once per run, not per step: printed apart.
PER_RUN = (("targets", "targets (render + features)"), ("turntable", "turntable"), ("evidence", "end-of-run evidence"))
TOP = ("apply", "render", "objective", "backward", "step", "similarity", "remesh", "log")


def add_bench_parser(sub) -> None:
    from .flags import add_run_flags
    b = sub.add_parser("bench", help="benchmarks that print figures")
    bsub = b.add_subparsers(dest="what", required=True)
    s = bsub.add_parser("step", help="per-step profile of a short run (parts, kernels compiled, peak memory)")
    s.add_argument("scene", nargs="?", default="suzanne")
    s.add_argument("envmap", nargs="?", default="studio")
    s.add_argument("model", nargs="?", default="mae")
    s.add_argument("--json", action="store_true", help="print the figures as JSON")
    s.add_argument("--no-sync", action="store_true",
                   help="no host syncs at part boundaries (times as a normal run sees them: lazy work lands late)")
    s.add_argument("--no-panel", action="store_true",
                   help="no cross-model panel at logged steps (pixel objectives run one by default)")
    s.add_argument("--no-steady-guiding", action="store_true",
                   help="Mitsuba's guiding set-up as shipped (recompiles kernels every step), for comparison")
    add_run_flags(s)
    s.set_defaults(func=cmd_bench_step)
    d = bsub.add_parser("demo", help="a default demo: the end-of-run evidence's share of its wall time")
    add_run_flags(d)
    d.set_defaults(func=cmd_bench_demo)
    m = bsub.add_parser("memory", help="resident memory over many tiny steps (must stay flat)")
    m.add_argument("--steps", type=int, default=500)
    m.add_argument("--early", type=int, default=50, help="the step compared with the last one")
    m.add_argument("--integrator", choices=["fast", "research"], default="fast")
    m.add_argument("--model", default="mae")
    m.add_argument("--panel", action="store_true", help="with the cross-model panel at every step (slow)")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_bench_memory)
    from .bench_models import add_bench_models_parser
    add_bench_models_parser(bsub)


# -- memory of this process -------------------------------------------------------------------------------------
def proc_status_mb(key: str = "VmRSS") -> float:
    """VmRSS (resident now) or VmHWM (peak resident) of this process in MB, from /proc/self/status (Linux); falls
    back to getrusage's peak where /proc is missing."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    scale = 1 if sys.platform != "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / scale


# -- the instrumented run -----------------------------------------------------------------------------------------
def _timed(profile, part, fn):
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        with profile(part):
            return fn(*a, **kw)
    return wrapper


def instrument_integrator(integrator, profile) -> list[str]:
    """Times the integrator's backward pass and, inside it, the projective integrators' silhouette and guiding
    set-ups, by wrapping those methods on this one instance (the run loop is untouched). Returns what it wrapped."""
    wrapped = []
    if hasattr(integrator, "render_backward"):
        integrator.render_backward = _timed(profile, "render_backward", integrator.render_backward)
        wrapped.append("render_backward")
    detail = getattr(integrator, "proj_detail", None)
    if detail is not None:
        detail.init_primarily_visible_silhouette = _timed(profile, "silhouette_setup",
                                                          detail.init_primarily_visible_silhouette)
        detail.init_indirect_silhouette = _timed(profile, "guiding_setup", detail.init_indirect_silhouette)
        wrapped += ["silhouette_setup", "guiding_setup"]
    return wrapped


def bench_run(cfg, sync: bool = True, kernels: bool = True, callback=None, log=None, integrator_attrs=None,
              steady_guiding: bool = True):
    """Runs `cfg` with a synchronizing, kernel-counting profile; returns (Run, RunResult, Profile, step marks).
    `integrator_attrs`: attributes set on the integrator after loading (experiments, e.g. proj_seed_spp);
    `steady_guiding=False` undoes guiding.steady_guiding (Mitsuba's set-up as shipped)."""
    from ..optimization.loop import Run
    from ..optimization.timing import Profile

    class BenchRun(Run):
        reset_peak_after_loop = True   # report["memory"]: the loop's peak and the end-of-run work's own

        def _setup(self):
            super()._setup()
            integ = self.scene.integrator()
            detail = getattr(integ, "proj_detail", None)
            if not steady_guiding and detail is not None and "init_indirect_silhouette" in vars(detail):
                del detail.init_indirect_silhouette     # back to the class's method
            for k, v in (integrator_attrs or {}).items():
                if not hasattr(integ, k):
                    raise AttributeError(f"the integrator has no attribute {k!r}")
                setattr(integ, k, v)
            self._keep_integrator = integ   # the wrappers live on this Python object: keep it alive
            self.instrumented = instrument_integrator(integ, self.profile)

    log = log or (lambda *a: print(*a, file=sys.stderr))
    run = BenchRun(cfg, log=log)
    run.profile = prof = Profile(sync=sync, kernels=kernels)
    marks = []

    def on_step(step):
        marks.append(time.perf_counter())
        if callback is not None:
            callback(step)
    try:
        result = run.execute(on_step, None, False)
    finally:
        prof.close()
    return run, result, prof, marks


def split_steps(prof, marks) -> list[dict]:
    """Per-step seconds in each part and kernel counts, from the profile's ordered events. A step ends with its
    'log' part (the callback mark sits inside it)."""
    events = prof.events
    logs = [e for e in events if e["part"] == "log"]
    loop_start = next((e["t0"] for e in events if e["part"] == "apply"), None)
    steps = []
    start = loop_start
    for lg in logs:
        end = lg["t0"] + lg["seconds"]
        parts = {}
        for e in events:
            if start <= e["t0"] < end:
                parts[e["part"]] = parts.get(e["part"], 0.0) + e["seconds"]
        wall = end - start
        parts["other"] = max(0.0, wall - sum(v for k, v in parts.items() if k in TOP))
        if "backward" in parts:
            parts["network_backward"] = max(0.0, parts["backward"] - parts.get("backward/render_backward", 0.0))
        kern = {}
        for t, part, c in prof.kernel_log:
            if start <= t < end:
                d = kern.setdefault(part or "other", dict.fromkeys(c, 0))
                for k, v in c.items():
                    d[k] += v
        total = {k: sum(d[k] for d in kern.values()) for k in ("launches", "compiled", "from_disk", "compile_ms")}
        steps.append({"seconds": wall, "parts": parts, "kernels": total, "kernels_by_part": kern})
        start = end
    return steps


def summarize(steps: list[dict], skip_first: bool = True) -> dict:
    use = steps[1:] if skip_first and len(steps) > 1 else steps
    names = [n for n, _ in PARTS]
    med = {n: statistics.median([s["parts"].get(n, 0.0) for s in use]) for n in names}
    mean = {n: statistics.fmean([s["parts"].get(n, 0.0) for s in use]) for n in names}
    wall_mean = statistics.fmean([s["seconds"] for s in use])
    kern = {k: statistics.median([s["kernels"][k] for s in use]) for k in ("launches", "compiled", "from_disk")}
    kern["compile_ms"] = statistics.median([s["kernels"]["compile_ms"] for s in use])
    compiled_by_part: dict[str, int] = {}
    for s in use:
        for part, c in s["kernels_by_part"].items():
            if c["compiled"] or c["from_disk"]:
                compiled_by_part[part] = compiled_by_part.get(part, 0) + c["compiled"] + c["from_disk"]
    return {"steps_used": len(use), "step_seconds_median": statistics.median([s["seconds"] for s in use]),
            "step_seconds_mean": wall_mean, "parts_median": med, "parts_mean": mean,
            "shares": {n: mean[n] / wall_mean if wall_mean else 0.0 for n in names},
            "kernels_per_step_median": kern,
            "kernels_compiled_per_step": [s["kernels"]["compiled"] + s["kernels"]["from_disk"] for s in steps],
            "compiled_by_part": compiled_by_part}


def mitsuba_log_to_stderr() -> None:
    """Sends Mitsuba's log (its warnings go to stdout by default) to stderr, so that stdout holds only figures."""
    from ..render.variant import mitsuba
    mi = mitsuba()

    class ToStderr(mi.Appender):
        def append(self, level, text):
            print(text, file=sys.stderr)

        def log_progress(self, *args, **kwargs):
            pass
    logger = mi.logger() if hasattr(mi, "logger") else mi.Thread.thread().logger()
    logger.clear_appenders()
    logger.add_appender(ToStderr())


def cmd_bench_step(args) -> int:
    from .flags import config_from_args
    base = dict(views=4, width=128, height=128, spp=16, epochs=4, patience=0, weights="untrained",
                render_every=1000, mesh_every=1000)
    cfg = config_from_args(args, base)
    if args.no_panel:
        cfg.panel_every = -1
    if args.out is None:
        cfg.out = tempfile.mkdtemp(prefix="mrd-bench-")
    sync = not args.no_sync
    mitsuba_log_to_stderr()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    run, result, prof, marks = bench_run(cfg, sync=sync, kernels=True, steady_guiding=not args.no_steady_guiding)
    # CPU seconds of all this process's threads per wall second: below the usable cores, others took the rest
    cpu_per_wall = (time.process_time() - cpu0) / max(1e-9, time.perf_counter() - wall0)
    steps = split_steps(prof, marks)
    if not steps:
        print("no step finished: nothing to report", file=sys.stderr)
        return 1
    s = summarize(steps)
    r = result.report
    mem = r.get("memory") or {}
    out = {"config": {k: r["config"][k] for k in ("scene", "envmap", "model", "views", "width", "height", "spp",
                                                    "epochs", "integrator", "schedule")},
           "integrator": r["integrator"], "variant": r["variant"], "synced_parts": sync,
           "steady_guiding": not args.no_steady_guiding,
           "first_step_seconds": steps[0]["seconds"], **s,
           "per_step": [{"seconds": x["seconds"], "kernels": x["kernels"]} for x in steps],
           "peak_rss_mb": max(proc_status_mb("VmHWM"), mem.get("loop_peak_rss_mb", 0.0)),
           "rss_end_mb": proc_status_mb("VmRSS"),
           "loop_peak_rss_mb": mem.get("loop_peak_rss_mb"),
           "end_peak_rss_mb": mem.get("end_peak_rss_mb", mem.get("run_peak_rss_mb")),
           "peak_rss_method": mem.get("method"),
           "chamfer": r.get("chamfer"), "instrumented": getattr(run, "instrumented", []),
           "per_run_seconds": {k: sum(prof.samples.get(k, [])) for k, _ in PER_RUN},
           "run_seconds": r.get("seconds"), "evidence_timings": (r.get("evidence") or {}).get("timings"),
           "panel": not args.no_panel and getattr(run, "panel", None) is not None,
           "machine": describe_machine(), "cpu_per_wall": cpu_per_wall}
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print(format_step_table(out))
    return 0


def format_step_table(out: dict) -> str:
    c = out["config"]
    lines = [machine_line(out["machine"])] if out.get("machine") else []
    lines += [f"{c['scene']} / {c['envmap']} / {c['model']}: {c['views']} views {c['width']}x{c['height']}, "
             f"{c['spp']} spp, integrator {c['integrator']} {out['integrator']}, schedule {c['schedule']}, "
             f"variant {out['variant']}",
             f"step (one epoch of {c['views']} views): median {out['step_seconds_median']:.3f} s, mean "
             f"{out['step_seconds_mean']:.3f} s over {out['steps_used']} steps; first step "
             f"{out['first_step_seconds']:.3f} s (compiles kernels)"
             + ("" if out["synced_parts"] else "   [--no-sync: lazy work is charged where the host waited]")
             + ("" if out.get("steady_guiding", True) else "   [--no-steady-guiding]"),
             f"  {'part':36s} {'median s':>9s} {'mean s':>9s} {'share':>7s}"]
    for name, label in PARTS:
        lines.append(f"  {label:36s} {out['parts_median'][name]:9.4f} {out['parts_mean'][name]:9.4f} "
                     f"{100 * out['shares'][name]:6.1f}%")
    k = out["kernels_per_step_median"]
    lines.append(f"kernels per step (median after the first): {k['launches']:.0f} launched, "
                 f"{k['compiled']:.0f} compiled, {k['from_disk']:.0f} loaded from the disk cache "
                 f"({k['compile_ms']:.0f} ms compiling)")
    lines.append("kernels compiled or loaded, per step: " + " ".join(str(x) for x in out["kernels_compiled_per_step"]))
    if out["compiled_by_part"]:
        lines.append("  after the first step, in: " + ", ".join(f"{p} {n}" for p, n in
                                                                 sorted(out["compiled_by_part"].items())))
    lines.append("once per run: " + ", ".join(f"{label} {out['per_run_seconds'][k]:.2f} s" for k, label in PER_RUN))
    lines.append(evidence_share_line(out["per_run_seconds"], out.get("run_seconds"), out.get("evidence_timings")))
    lines.append(f"peak RSS {out['peak_rss_mb']:.0f} MB (whole process, targets included)")
    if out.get("loop_peak_rss_mb") is not None:
        end = out.get("end_peak_rss_mb")
        lines.append(f"  of the loop (set-up and targets included) {out['loop_peak_rss_mb']:.0f} MB; of the end-of-run "
                     f"work (final renders, evidence, report) {'?' if end is None else f'{end:.0f}'} MB "
                     f"[{out.get('peak_rss_method')}]")
    if out.get("cpu_per_wall") is not None:
        lines.append(f"CPU seconds per wall second (all threads): {out['cpu_per_wall']:.2f} of "
                     f"{out['machine'].get('usable_cpus')} usable cores")
    return "\n".join(lines)


def evidence_share_line(per_run: dict, run_seconds, timings=None) -> str:
    """The end-of-run evidence (turntable included) as a share of the run's wall time: a share, not seconds,
    because other work on a shared machine slows both alike."""
    ev = float(per_run.get("evidence", 0.0)) + float(per_run.get("turntable", 0.0))
    if not run_seconds:
        return f"end-of-run evidence {ev:.2f} s"
    parts = ", ".join(f"{k} {100 * v / run_seconds:.1f}%" for k, v in (timings or {}).items() if v >= 0.005 * ev)
    return (f"end-of-run evidence (turntable included): {100 * ev / run_seconds:.1f}% of the run's wall time "
            f"(target for a default demo: at most 15%)" + (f"; by part: {parts}" if parts else ""))


def cmd_bench_demo(args) -> int:
    """A default `mrd demo` (its settings, evidence on) and the evidence's share of its wall time."""
    from .flags import DEMO, config_from_args
    cfg = config_from_args(args, DEMO)
    if args.out is None:
        cfg.out = tempfile.mkdtemp(prefix="mrd-bench-demo-")
    if cfg.weights == "pretrained":
        from ..errors import MRDError
        from ..objectives import build_objective
        try:
            build_objective(cfg.model, weights="pretrained", weights_dir=cfg.weights_dir, log=lambda *a: None)
        except MRDError:
            cfg.weights = "untrained"  # as `mrd demo` does without weights
    from ..optimization.loop import optimize
    t0 = time.perf_counter()
    r = optimize(cfg, log=lambda *a, **k: print(*a, file=sys.stderr, **k)).report
    wall = time.perf_counter() - t0
    prof = r.get("profile") or {}
    per_run = {k: (prof.get(k) or {}).get("total", 0.0) for k, _ in PER_RUN}
    ev = r.get("evidence") or {}
    outcome = (ev.get("verdict") or {}).get("outcome")
    print(f"demo ({cfg.model}, {r.get('weights')}): {wall:.1f} s wall, outcome {outcome}")
    print(evidence_share_line(per_run, wall, ev.get("timings")))
    return 0


# -- memory over a long run -----------------------------------------------------------------------------------------
def memory_run(steps: int = 500, early: int = 50, integrator: str = "fast", model: str = "mae", out=None,
               log=None, panel: bool = False) -> dict:
    """Runs `steps` tiny steps (16x16, 1 view, 2 spp, no remesh) and samples VmRSS/VmHWM after every step. The
    cross-model panel of pixel runs (six networks at every logged step) and the end-of-run evidence are off unless
    `panel` (then the panel runs at every step)."""
    from ..config import RunConfig
    from ..optimization.loop import optimize
    cfg = RunConfig(scene="blob", envmap="studio", model=model, views=1, width=16, height=16, spp=2, epochs=steps,
                    remesh=[], start_subdivisions=3, patience=0, render_every=10 ** 9, mesh_every=10 ** 9,
                    log_every=1, integrator=integrator, weights="untrained", panel_every=1 if panel else -1,
                    evidence=panel,
                    out=out or tempfile.mkdtemp(prefix="mrd-bench-memory-"))
    rss, hwm = [], []

    def sample(step):
        rss.append(proc_status_mb("VmRSS"))
        hwm.append(proc_status_mb("VmHWM"))
    t0 = time.perf_counter()
    r = optimize(cfg, callback=sample, log=log or (lambda *a: None))
    seconds = time.perf_counter() - t0
    n = len(rss)
    e = min(early, n) - 1
    tail = list(range(e, n))
    slope = 0.0
    if len(tail) > 1:
        mx = statistics.fmean(tail)
        my = statistics.fmean(rss[i] for i in tail)
        slope = sum((i - mx) * (rss[i] - my) for i in tail) / sum((i - mx) ** 2 for i in tail)
    return {"steps": n, "early_step": e + 1, "rss_early_mb": rss[e], "rss_end_mb": rss[-1],
            "peak_early_mb": hwm[e], "peak_end_mb": hwm[-1], "growth_peak": hwm[-1] / hwm[e] - 1,
            "growth_rss": rss[-1] / rss[e] - 1, "rss_slope_kb_per_step": slope * 1024, "seconds": seconds,
            "status": r.status, "integrator": integrator, "model": model, "panel": panel}


def cmd_bench_memory(args) -> int:
    out = memory_run(args.steps, args.early, args.integrator, args.model, panel=args.panel)
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(format_memory(out))
    return 0 if out["growth_peak"] <= 0.05 else 1


def format_memory(m: dict) -> str:
    return (f"{m['steps']} tiny steps ({m['model']}, integrator {m['integrator']}, 16x16, 1 view, 2 spp"
            f"{', cross-model panel every step' if m.get('panel') else ''}) in "
            f"{m['seconds']:.0f} s\n"
            f"  peak RSS at step {m['early_step']}: {m['peak_early_mb']:.1f} MB; at step {m['steps']}: "
            f"{m['peak_end_mb']:.1f} MB ({100 * m['growth_peak']:+.2f} %)\n"
            f"  RSS now at step {m['early_step']}: {m['rss_early_mb']:.1f} MB; at step {m['steps']}: "
            f"{m['rss_end_mb']:.1f} MB ({100 * m['growth_rss']:+.2f} %); trend {m['rss_slope_kb_per_step']:+.1f} "
            f"KB per step\n"
            f"  {'flat (within 5 %)' if m['growth_peak'] <= 0.05 else 'GROWS by more than 5 %'}")
