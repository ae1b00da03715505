"""`mrd bench models`: per objective at its native size, the seconds of one optimization step's network work
(forward + backward through `dr.wrap`, median of several), peak memory, and the network passes per step.

Each model runs in its own subprocess so that peak memory is that model's alone. Weights do not change the cost, so
untrained networks are used (no download needed). Hook into the CLI with `add_bench_models_parser(bench_subparsers)`
(adds `models` to an existing `mrd bench` sub-command group) or call `run_bench_models(args)`.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from ..errors import MRDError

RESEARCH_PASSES = "~5 fwd + 1 bwd (+1 fwd/bwd with --classify)"


def add_bench_models_parser(bench_subparsers):
    p = bench_subparsers.add_parser("models", help="forward+backward time, peak memory and passes per step of each "
                                                   "objective at its native size")
    p.add_argument("models", nargs="*", metavar="MODEL", help="objectives to measure (default: all)")
    p.add_argument("--repeats", type=int, default=5, help="timed steps per model (median reported; default 5)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when present, else cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    p.add_argument("--json", metavar="PATH", default=None, help="also write the figures as JSON")
    p.set_defaults(func=run_bench_models)
    return p


def bench_one(name: str, repeats: int = 5, device: str | None = None, size: int | None = None,
              threads: int | None = None) -> dict:
    """Measures one objective in this process: build, one target `prepare`, one warm-up step, `repeats` timed steps."""
    import resource

    import drjit as dr
    import numpy as np
    import torch
    if threads:
        torch.set_num_threads(threads)

    from ..objectives import build_objective
    from ..render.variant import mitsuba
    if device == "cpu":
        os.environ.setdefault("MRD_VARIANT", "llvm_ad_rgb")
    mi = mitsuba()
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    opts = {"weights": "untrained", "log": lambda m: None}
    if size is not None:
        opts["input_size"] = size
    if device is not None:
        opts["device"] = device
    try:
        obj = build_objective(name, **opts)
    except TypeError:                       # pixel objectives take no network options
        obj = build_objective(name)
    build_s = time.perf_counter() - t0
    s = obj.native_size or size or 256
    rng = np.random.default_rng(0)
    target = mi.TensorXf(rng.random((s, s, 3), dtype=np.float32))
    tf = obj.prepare(target)
    cuda = str(getattr(obj, "device", "cpu")).startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    before = obj.forward_calls
    for i in range(repeats + 1):
        img = mi.TensorXf(rng.random((s, s, 3), dtype=np.float32))
        dr.enable_grad(img)
        second = None
        if obj.renders_per_view == 2:
            second = mi.TensorXf(rng.random((s, s, 3), dtype=np.float32))
            dr.enable_grad(second)
        dr.eval(img, second) if second is not None else dr.eval(img)
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        loss = obj.loss(img, tf, second_render=second)
        dr.backward(loss)
        g = dr.grad(img)
        dr.eval(g)
        dr.sync_thread()
        if cuda:
            torch.cuda.synchronize()
        if i:                                # the first step warms up (JIT compilation, allocator)
            times.append(time.perf_counter() - t)
    steps = repeats + 1
    fwd = (obj.forward_calls - before) / steps
    out = {
        "model": name, "size": s, "device": "cuda" if cuda else "cpu", "variant": mi.variant(),
        "build_s": round(build_s, 3), "step_median_s": round(statistics.median(times), 4),
        "step_min_s": round(min(times), 4), "step_max_s": round(max(times), 4), "repeats": repeats,
        "forward_per_step": fwd, "backward_per_step": 1.0 if fwd else 0.0,
        "target_forwards": obj.prepare_calls, "peak_rss_mb": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "base_rss_mb": round(base_rss, 1),
        "torch_threads": torch.get_num_threads(),
    }
    if cuda:
        out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def _run_child(name, repeats, device, threads=None, timeout=900) -> dict:
    cmd = [sys.executable, "-m", "mrd_backend.cli.bench_models", "--one", name, "--repeats", str(repeats)]
    if device:
        cmd += ["--device", device]
    if threads:
        cmd += ["--threads", str(threads)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode or not lines:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        return {"model": name, "error": tail}
    return json.loads(lines[-1])


def format_table(results: list[dict]) -> str:
    head = ("model", "size", "device", "threads", "fwd+bwd median s", "min..max s", "peak memory", "passes per step")
    rows = [head]
    for r in results:
        if "error" in r:
            rows.append((r["model"], "-", "-", "-", "error: " + r["error"], "", "", ""))
            continue
        mem = f"{r['peak_cuda_mb']:.0f} MB (GPU)" if "peak_cuda_mb" in r else \
            f"{r['peak_rss_mb']:.0f} MB RSS (+{r['peak_rss_mb'] - r['base_rss_mb']:.0f})"
        passes = f"{r['forward_per_step']:g} fwd + {r['backward_per_step']:g} bwd" if r["forward_per_step"] else \
            "no network"
        rows.append((r["model"], str(r["size"]), r["device"], str(r.get("torch_threads", "-")),
                     f"{r['step_median_s']:.3f}",
                     f"{r['step_min_s']:.3f}..{r['step_max_s']:.3f}", mem, passes))
    w = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(x) for c, x in zip(row, w)).rstrip() for row in rows]
    lines.append(f"target features: one forward per view, cached (the research code: {RESEARCH_PASSES} per view)")
    return "\n".join(lines)


def run_bench_models(args) -> int:
    from ..objectives import REGISTRY
    names = list(args.models or REGISTRY)
    for n in names:
        if n not in REGISTRY:
            raise MRDError(f"unknown model {n!r}: use one of {', '.join(REGISTRY)}")
    if getattr(args, "threads", None) is not None and args.threads < 1:
        raise MRDError(f"--threads {args.threads}: give at least 1")
    if args.repeats < 1:
        raise MRDError(f"--repeats {args.repeats}: give at least 1")
    devices = [args.device] if args.device else ["cpu"]
    if not args.device:
        try:
            import torch
            if torch.cuda.is_available():
                devices.append("cuda")
        except ImportError:
            pass
    results = []
    for dev in devices:
        for n in names:
            print(f"measuring {n} on {dev} ...", file=sys.stderr, flush=True)
            results.append(_run_child(n, args.repeats, dev, getattr(args, "threads", None)))
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


def _main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m mrd_backend.cli.bench_models")
    ap.add_argument("--one", required=True)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default=None)
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)
    print(json.dumps(bench_one(a.one, a.repeats, a.device, a.size, a.threads)))


if __name__ == "__main__":
    _main()
