"""Benchmark (not a test) of what the Blender add-on costs: main-thread time per viewport update, and the per-step
overhead it adds on top of the backend's own step time.

    .venv/bin/python scripts/bench_addon.py [--sizes 1000 10000 100000] [--updates 20] [--real-epochs 8]

Needs the bpy module (or run it with `blender -b --python scripts/bench_addon.py -- ...`).

1. Viewport updates: a result object of ~1k / 10k / 100k vertices receives steps as the add-on applies them
   (ResultWriter.apply_step after reading the step's .npz, exactly the timer's work): moving the vertices (the
   live update of every step), moving them and keeping the step as a shape key (a logged step), and a topology
   change (after a remesh). Median and max milliseconds of main-thread time.
2. Per-step overhead: the worker streams steps to Blender (a) from a stand-in optimizer that does no work, at each
   size (pure overhead: the worker's write, the transport, Blender's apply), and (b) from the real run loop at a
   small size, compared with the same run called directly (optimize() with no callback).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def sphere(n_vertices: int):
    """A closed UV-sphere-like mesh with about n vertices."""
    rings = max(3, int(round((n_vertices / 2) ** 0.5)))
    segs = max(3, (n_vertices - 2) // rings)
    th = np.linspace(0, np.pi, rings + 2)[1:-1]
    ph = np.linspace(0, 2 * np.pi, segs, endpoint=False)
    t, p = np.meshgrid(th, ph, indexing="ij")
    v = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    v = np.concatenate([[[0, 0, 1]], v, [[0, 0, -1]]]).astype(np.float32)
    f = []
    idx = lambda r, s: 1 + r * segs + s % segs  # noqa: E731
    for s in range(segs):
        f.append((0, idx(0, s), idx(0, s + 1)))
        f.append((len(v) - 1, idx(rings - 1, s + 1), idx(rings - 1, s)))
    r, s = np.meshgrid(np.arange(rings - 1), np.arange(segs), indexing="ij")
    a, b, c, d = idx(r, s), idx(r + 1, s), idx(r + 1, s + 1), idx(r, s + 1)
    quads = np.stack([a, b, c, d], -1).reshape(-1, 4)
    f = np.concatenate([np.array(f), quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]]).astype(np.int32)
    return v, f


class StepTimes:
    """What one job's steps cost, recorded through the add-on's `job.STEP_HOOKS` (see `install_step_times`)."""

    def __init__(self):
        self.update_times: list[float] = []   # main-thread seconds per applied live update
        self.latencies: list[float] = []      # seconds from the worker's emit to Blender applying the step
        self.write_times: list[float] = []    # worker seconds spent writing each step's arrays

    def add(self, ev: dict, live: bool, seconds: float):
        if live:
            self.update_times.append(seconds)
        if ev.get("sent"):
            self.latencies.append(time.time() - float(ev["sent"]))
        if ev.get("write_seconds") is not None:
            self.write_times.append(float(ev["write_seconds"]))


def step_times(job) -> StepTimes:
    """The StepTimes of a job (an empty one until its first step)."""
    return job.__dict__.setdefault("step_times", StepTimes())


def _record(job, ev, live, seconds):
    step_times(job).add(ev, live, seconds)


def install_step_times():
    """Every job records its StepTimes from now on (tests read them too)."""
    from mrd_blender_addon import job
    if _record not in job.STEP_HOOKS:
        job.STEP_HOOKS.append(_record)


def ms(xs):
    return f"{1000 * statistics.median(xs):7.2f} / {1000 * max(xs):7.2f}"


def bench_updates(sizes, updates, tmp: Path):
    import bpy

    from mrd_blender_addon import apply, bpy_arrays
    print("\n1. Main-thread time per viewport update (median / max ms; includes reading the step's .npz)")
    print(f"{'vertices':>9} {'move (every step)':>20} {'move + shape key':>20} {'topology change':>20} "
          f"{'256px render':>14}")
    rows = []
    for n in sizes:
        bpy.ops.wm.read_homefile(use_empty=True)
        bpy.ops.mesh.primitive_cube_add()
        target = bpy.context.active_object
        v, f = sphere(n)
        v2, f2 = sphere(int(n * 1.1))
        w = apply.ResultWriter(target, "shape", tmp, keep_every=10 ** 9)
        w.begin((v, f))
        render = np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)

        def one(step, verts, faces, topo, keep, with_render=False):
            path = tmp / f"b_{n}_{step}.npz"
            arrays = {"vertices": verts}
            if faces is not None:
                arrays["faces"] = faces
            if with_render:
                arrays["render"] = render
            np.savez(path, **arrays)
            ev = {"step": step, "epochs": 10 ** 9, "topology": topo, "remeshed": False}
            t0 = time.perf_counter()
            with np.load(path) as z:
                data = {k: z[k] for k in z.files}
            w.apply_step(ev, data, live=True, keep=keep)
            dt = time.perf_counter() - t0
            path.unlink()
            return dt

        one(0, v, f, 0, True)
        rng = np.random.default_rng(1)
        move = [one(i, v + 0.001 * i, None, 0, False) for i in range(1, updates + 1)]
        key = [one(i, v + rng.normal(0, 1e-3, v.shape).astype(np.float32), None, 0, True)
               for i in range(updates + 1, 2 * updates + 1)]
        topo, k = [], 1
        for i in range(2 * updates + 1, 2 * updates + 1 + max(3, updates // 4)):
            vv, ff = (v2, f2) if k % 2 else (v, f)
            topo.append(one(i, vv, ff, k, False))
            k += 1
        img = []
        for i in range(updates):
            t0 = time.perf_counter()
            bpy_arrays.set_image(w.name + " render", render, float_buffer=False)
            img.append(time.perf_counter() - t0)
        print(f"{len(v):>9} {ms(move):>20} {ms(key):>20} {ms(topo):>20} {1000 * statistics.median(img):11.2f} ms")
        rows.append({"vertices": len(v), "move": move, "shape_key": key, "topology": topo})
    return rows


def run_job(settings_fn, tmp: Path, env: dict):
    import bpy

    from mrd_blender_addon import job
    install_step_times()
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        s = bpy.context.scene.mrd
        settings_fn(s)
        s.output_dir = str(tmp / "runs")
        t0 = time.perf_counter()
        j = job.Job.start(bpy.context)
        t_start = time.perf_counter() - t0
        j.run_blocking()
        total = time.perf_counter() - t0
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    report = {}
    if (j.run_dir / "report.json").is_file():
        report = json.loads((j.run_dir / "report.json").read_text())
    return j, total, t_start, report


def bench_overhead(sizes, tmp: Path, real_epochs: int):
    import bpy
    print("\n2a. Per-step overhead, stand-in optimizer with 50 ms steps (no rendering): the worker's write happens")
    print("    inside the run loop; Blender's apply happens in Blender's process, in parallel with the next step")
    print(f"{'vertices':>9} {'step interval':>14} {'= 50 ms +':>10} {'worker write':>13} {'Blender apply':>14} "
          f"{'latency':>9}")
    epochs, pause = 30, 0.05
    for n in sizes:
        bpy.ops.wm.read_homefile(use_empty=True)
        bpy.ops.mesh.primitive_ico_sphere_add()
        v, f = sphere(n)  # the stand-in moves the start mesh: give it one of the requested size
        start = bpy.data.meshes.new("start")
        start.from_pydata(v.tolist(), [], f.tolist())
        so = bpy.data.objects.new("start", start)
        bpy.context.scene.collection.objects.link(so)

        def settings(s):
            s.mode, s.epochs, s.keep_every, s.views, s.resolution = "shape", epochs, 10, 2, 64
            s.start, s.start_object = "object", so
        j, *_ = run_job(settings, tmp, {"MRD_WORKER_OPTIMIZER": "addon_helpers:fake_optimize",
                                        "MRD_WORKER_PYTHONPATH": str(ROOT / "tests"),
                                        "MRD_FAKE_STEP_SECONDS": str(pause)})
        interval = statistics.median(np.diff(j.elapsed_list))
        t = step_times(j)
        print(f"{len(v):>9} {1000 * interval:11.1f} ms {1000 * (interval - pause):7.1f} ms "
              f"{1000 * statistics.median(t.write_times):10.1f} ms {1000 * statistics.median(t.update_times):11.1f} ms "
              f"{1000 * statistics.median(t.latencies):6.1f} ms")
    if real_epochs <= 0:
        return
    print(f"\n2b. The real run loop ({real_epochs} epochs, icosphere level 4 = 2,562 vertices, 2 views 64 px, 4 spp, "
          "mae): called directly vs through Blender (after a warm-up run that fills Dr.Jit's kernel cache)")
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.mesh.primitive_monkey_add()
    bpy.context.scene.world = bpy.data.worlds.new("World")

    def settings(s):
        s.mode, s.model, s.epochs, s.keep_every, s.views, s.resolution, s.spp = "shape", "mae", real_epochs, 1, 2, 64, 4
        s.start, s.icosphere_level, s.remesh, s.patience = "icosphere", 4, "", 0
    # the inputs the add-on writes, for the direct runs
    from mrd_blender_addon import job
    os.environ["MRD_WORKER_OPTIMIZER"] = "addon_helpers:fake_optimize"
    os.environ["MRD_WORKER_PYTHONPATH"] = str(ROOT / "tests")
    j0, *_ = run_job(lambda s: (settings(s), setattr(s, "epochs", 1)), tmp, {})
    del os.environ["MRD_WORKER_OPTIMIZER"], os.environ["MRD_WORKER_PYTHONPATH"]
    cfg = json.loads((j0.run_dir / "input" / "config.json").read_text())
    cfg["epochs"] = real_epochs

    def direct(tag):
        c = dict(cfg, out=str(tmp / tag))
        code = ("import json, sys, time; from mrd_backend.optimization.loop import optimize; from mrd_backend.config import "
                "RunConfig; from mrd_backend.scene.io import load_spec; cfg = RunConfig.from_dict(json.loads(sys.argv[1]));"
                "t = time.perf_counter(); r = optimize(cfg, target=load_spec(sys.argv[2]), log=lambda m: None);"
                "print('TOTAL', time.perf_counter() - t, json.dumps([s['seconds'] for s in r.report['steps']]))")
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code, json.dumps(c), str(j0.run_dir / "input" / "scene.npz")],
                             capture_output=True, text=True, env=client.worker_env())
        wall = time.perf_counter() - t0
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith("TOTAL")), None)
        if line is None:
            raise SystemExit("direct run failed: " + out.stderr[-800:])
        _, total, steps = line.split(" ", 2)
        return wall, float(total), json.loads(steps)

    import subprocess
    from mrd_blender_addon import client
    direct("warmup")
    d_wall, d_total, d_steps = direct("direct")
    j, total, t_start, report = run_job(settings, tmp, {})
    if j.status != "done":
        print(f"   the run through Blender did not finish: {j.summary()}")
        return
    b_steps = [s["seconds"] for s in report.get("steps", [])]
    print(f"   backend step time (median): {1000 * statistics.median(d_steps):.0f} ms direct, "
          f"{1000 * statistics.median(b_steps):.0f} ms through Blender")
    t = step_times(j)
    print(f"   worker write {1000 * statistics.median(t.write_times):.1f} ms/step, Blender apply "
          f"{1000 * statistics.median(t.update_times):.1f} ms/step, latency {1000 * statistics.median(t.latencies):.1f} ms")
    print(f"   whole run: {d_wall:.1f} s as a plain Python process, {total:.1f} s through Blender "
          f"(export + start: {1000 * t_start:.0f} ms); difference per step {1000 * (total - d_wall) / real_epochs:+.0f} ms")
    _ = job


def main(argv=None):
    if "--" in sys.argv:
        argv = sys.argv[sys.argv.index("--") + 1:]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    p.add_argument("--updates", type=int, default=20)
    p.add_argument("--real-epochs", type=int, default=8, help="0 skips the real-loop part")
    args = p.parse_args(argv)
    import bpy
    import mrd_blender_addon
    if not hasattr(bpy.types.Scene, "mrd"):
        mrd_blender_addon.register()
    os.environ.setdefault("MRD_BACKEND_PYTHON", sys.executable)
    print(f"Blender {bpy.app.version_string}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        bench_updates(args.sizes, args.updates, tmp)
        bench_overhead(args.sizes, tmp, args.real_epochs)


if __name__ == "__main__":
    main()
