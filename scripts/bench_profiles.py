#!/usr/bin/env python
"""Compares direct_projective integrator profiles on the bundled shape scenes with the pixel objective (mae):
final chamfer distance to the target and seconds per epoch, runs of the same length, one fresh process per run.

    .venv/bin/python scripts/bench_profiles.py                       # the comparison in docs/speed.md
    .venv/bin/python scripts/bench_profiles.py --scenes blob --epochs 6 --candidates research fast

A candidate passes when its final chamfer is within 10 % of the reference run (`research` unless --reference says
otherwise) of the same scene and seed (lower is better, so only a chamfer more than 10 % above the reference fails).
A candidate NAME~K runs profile NAME with guiding_every K (each view's guiding octree built every K backward passes,
docs/speed.md):
    .venv/bin/python scripts/bench_profiles.py --candidates research research~2 --reference research
A candidate NAME@per_epoch runs profile NAME with one optimizer step per epoch instead of one per view:

    .venv/bin/python scripts/bench_profiles.py --candidates fast fast@per_epoch --reference fast

Times come from the run's own per-epoch figures (report.json "steps"), the first epoch (kernel compilation) left
out; the speed-up is the ratio of median seconds per epoch (robust to the remesh epoch and to research's one-time
threshold estimate, both in the mean column). On a shared machine, compare ratios within one invocation, not
absolute seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# name -> (Mitsuba integrator dict, attributes set on the loaded integrator). `research` and `fast` are read from
# config.py at run time, so this script always measures the profiles that runs use.
EXTRA_CANDIDATES = {
    # indirect silhouettes sampled uniformly in boundary sample space: no guiding structure to build
    "guiding_none": ({"type": "direct_projective", "guiding": "none"}, {}),
    # the octree with cheaper construction: fewer projected seeds, fewer samples per leaf, a smaller leaf budget
    "octree_lite": ({"type": "direct_projective"},
                    {"proj_seed_spp": 64, "octree_extra_leaf_sample": 32, "octree_max_leaf_cnt": 2 ** 20}),
    # `fast` with the gradient pass at the run's full spp (primary silhouettes are most of its backward)
    "fast_full_grad": ({"type": "direct_projective", "sppi": 0}, {}),
}


def candidate(name: str):
    from mrd_backend.config import INTEGRATOR_PROFILES
    name = name.split("@")[0].split("~")[0]
    if name in INTEGRATOR_PROFILES:
        return dict(INTEGRATOR_PROFILES[name]), {}
    if name in EXTRA_CANDIDATES:
        integ, attrs = EXTRA_CANDIDATES[name]
        return dict(integ), dict(attrs)
    raise SystemExit(f"unknown candidate {name!r}: use {', '.join([*INTEGRATOR_PROFILES, *EXTRA_CANDIDATES])}")


def child(spec: dict) -> dict:
    """One run in this process; returns its figures."""
    from mrd_backend.cli.bench import bench_run, proc_status_mb
    from mrd_backend.config import INTEGRATOR_PROFILES, RunConfig
    integ, attrs = candidate(spec["candidate"])
    name, _, schedule = spec["candidate"].partition("@")
    name, _, every = name.partition("~")          # NAME~K: each view's guiding octree built every K passes
    INTEGRATOR_PROFILES.setdefault(name, integ)   # extra candidates exist only in this process
    cfg = RunConfig(scene=spec["scene"], envmap=spec["envmap"], model="mae", views=spec["views"],
                    width=spec["size"], height=spec["size"], spp=spec["spp"], epochs=spec["epochs"],
                    remesh=spec["remesh"], patience=0, seed=spec["seed"], integrator=name,
                    schedule=schedule or spec["schedule"], render_every=10 ** 6, mesh_every=10 ** 6, out=spec["out"],
                    **({"guiding_every": int(every)} if every else {}),
                    **spec.get("config", {}))   # further RunConfig keys (bench_research_loop.py: the research rig)
    t0 = time.perf_counter()
    run, result, prof, _ = bench_run(cfg, sync=False, kernels=False, integrator_attrs=attrs, log=lambda *a: None)
    wall = time.perf_counter() - t0
    r = result.report
    secs = [s["seconds"] for s in r["steps"]]
    later = secs[1:] or secs
    guiding = sum(prof.samples.get("backward/render_backward/guiding_setup", []))
    return {**spec, "integrator": integ, "attrs": attrs, "status": r["status"],
            "chamfer_start": r["chamfer"]["start"], "chamfer_end": r["chamfer"]["end"],
            "loss_start": r["loss"]["start"], "loss_end": r["loss"]["end"],
            "epoch_seconds_mean": statistics.fmean(later), "epoch_seconds_median": statistics.median(later),
            "first_epoch_seconds": secs[0], "guiding_share": guiding / max(1e-9, sum(secs)),
            "run_seconds": wall, "peak_rss_mb": proc_status_mb("VmHWM")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenes", nargs="+", default=["blob", "knot", "suzanne"])
    p.add_argument("--candidates", nargs="+", default=["research", "fast", "guiding_none"],
                   help="profiles of config.py, extra candidates of this script, NAME@per_epoch")
    p.add_argument("--envmap", default="studio")
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--spp", type=int, default=8)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--remesh", type=int, nargs="*", default=[10])
    p.add_argument("--seeds", type=int, nargs="+", default=[42])
    p.add_argument("--reference", default="research", help="the candidate the others are compared with")
    p.add_argument("--schedule", default="per_view", choices=["per_view", "per_epoch"])
    p.add_argument("--out", default=None, help="folder for the runs (default: a temporary folder)")
    p.add_argument("--json", help="also write every run's figures to this JSON file")
    p.add_argument("--config", help="JSON file of further RunConfig keys for every run (e.g. {\"evidence\": false})")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print("RESULT " + json.dumps(child(json.loads(a.child))), flush=True)
        return 0
    import tempfile
    base = Path(a.out or tempfile.mkdtemp(prefix="mrd-bench-profiles-"))
    rows = []
    for si, scene in enumerate(a.scenes):
        for seed in a.seeds:
            order = a.candidates[si % len(a.candidates):] + a.candidates[:si % len(a.candidates)]  # spread drift
            for cand in order:
                spec = dict(scene=scene, envmap=a.envmap, views=a.views, size=a.size, spp=a.spp, epochs=a.epochs,
                            remesh=a.remesh, seed=seed, candidate=cand, schedule=a.schedule,
                            out=str(base / f"{scene}-{cand.replace('@', '-').replace('~', '-k')}-{seed}"),
                            config=json.loads(Path(a.config).read_text()) if a.config else {})
                proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                                      text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
                line = next((x for x in proc.stdout.splitlines() if "RESULT {" in x), None)  # Mitsuba may colour
                if proc.returncode or line is None:
                    print(f"{scene} {cand} seed {seed}: FAILED (exit status {proc.returncode})\n{proc.stderr[-3000:]}",
                          file=sys.stderr)
                    continue
                row = json.loads(line[line.index("RESULT {") + 7:])
                rows.append(row)
                print(f"  done {scene:8s} {cand:15s} seed {seed}: {row['epoch_seconds_median']:.2f} s/epoch, chamfer "
                      f"{row['chamfer_end']:.5f}", file=sys.stderr, flush=True)
    print(table(rows, a))
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0


def table(rows: list[dict], a) -> str:
    ref = {(r["scene"], r["seed"]): r for r in rows if r["candidate"] == a.reference}
    out = [f"mae, {a.views} views {a.size}x{a.size}, {a.spp} spp, {a.epochs} epochs, remesh {a.remesh}, schedule "
           f"{a.schedule}, envmap {a.envmap}; chamfer ratio and speed-up against `{a.reference}` (same scene and seed)",
           f"{'scene':8s} {'profile':15s} {'seed':>4s} {'median s':>8s} {'mean s':>7s} {'speed-up':>8s} "
           f"{'chamfer start':>13s} "
           f"{'chamfer end':>11s} {'vs ref':>8s} {'guiding':>7s} {'peak MB':>7s}"]
    for r in rows:
        base = ref.get((r["scene"], r["seed"]))
        speed = base["epoch_seconds_median"] / r["epoch_seconds_median"] if base else float("nan")
        ratio = r["chamfer_end"] / base["chamfer_end"] if base else float("nan")
        out.append(f"{r['scene']:8s} {r['candidate']:15s} {r['seed']:4d} {r['epoch_seconds_median']:8.2f} "
                   f"{r['epoch_seconds_mean']:7.2f} "
                   f"{speed:7.2f}x {r['chamfer_start']:13.5f} {r['chamfer_end']:11.5f} {100 * (ratio - 1):+7.1f}% "
                   f"{100 * r['guiding_share']:6.0f}% {r['peak_rss_mb']:7.0f}")
    out.append(f"per profile (geometric mean speed-up; worst chamfer against {a.reference}; pass = within +10 % on "
               "every scene):")
    for cand in dict.fromkeys(r["candidate"] for r in rows):
        mine = [r for r in rows if r["candidate"] == cand and (r["scene"], r["seed"]) in ref]
        if not mine:
            continue
        speeds = [ref[(r["scene"], r["seed"])]["epoch_seconds_median"] / r["epoch_seconds_median"] for r in mine]
        ratios = [r["chamfer_end"] / ref[(r["scene"], r["seed"])]["chamfer_end"] for r in mine]
        gm = statistics.geometric_mean(speeds)
        out.append(f"  {cand:15s} {gm:6.2f}x faster per epoch; chamfer {100 * (max(ratios) - 1):+.1f} % at worst "
                   f"({'pass' if max(ratios) <= 1.10 else 'FAIL'})")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
