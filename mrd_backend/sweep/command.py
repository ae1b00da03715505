"""`mrd sweep`: a grid of `mrd optimize` runs on Ray (default: embedded on this machine; `--address` joins a
cluster) or SLURM (submitit), resumable, with aggregates (sweep.csv, figures, sweep.html).

Grid from flags (--scenes --envmaps --models [--seeds] [--modes]) or a sweep file (YAML/JSON, per-cell
overrides; see mrd_backend/sweep/grid.py); every `mrd optimize` flag given here applies to every cell. Each cell runs
as its own `mrd optimize` process into SWEEP_DIR/<cell-name>/. Rerunning the same command skips finished cells and
continues unfinished ones.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ..atomic import atomic_write
from ..errors import MRDError

SWEEP_VERSION = 1


def add_sweep_parser(subparsers):
    from ..cli.flags import add_run_flags
    p = subparsers.add_parser("sweep", help="a grid of runs on Ray (local by default) or SLURM, resumable",
                              description=__doc__.split("\n\n")[1])
    a = p.add_argument
    a("sweep_file", nargs="?", help="YAML or JSON sweep file (optional; flags below add to / override it)")
    a("--scenes", nargs="+", help="scene names or mesh paths")
    a("--envmaps", nargs="+", help="environment names or .hdr/.exr paths")
    a("--models", nargs="+", help="objectives (`mrd scenes` lists them)")
    a("--seeds", nargs="+", type=int, help="one run per seed")
    a("--modes", nargs="+", choices=["shape", "material"], help="one run per mode")
    g = p.add_argument_group("engine")
    g.add_argument("--executor", choices=["ray", "slurm", "local"], default="ray",
                   help="ray (default; embedded unless --address), slurm (submitit), local (submitit's local executor)")
    g.add_argument("--address", help="join this Ray cluster (e.g. ray://head:10001 or auto) instead of an embedded one")
    g.add_argument("--memory-per-cell", type=float, default=None, metavar="GiB",
                   help="memory every cell declares (default per cell, measured: 8 with the cross-model panel, else "
                        "2 for mae/dual_buffer and 4 for a network; see docs/sweeps.md)")
    g.add_argument("--cpus-per-cell", type=float, default=1.0)
    g.add_argument("--gpus-per-cell", type=float, default=None,
                   help="default: 1 where the Ray cluster has GPUs, else 0; SLURM: 0 unless given")
    g.add_argument("--max-parallel", type=int, help="at most this many cells at once (embedded Ray, SLURM array)")
    g.add_argument("--partition", help="SLURM partition (--executor slurm)")
    g.add_argument("--timeout-min", type=int, default=24 * 60, help="SLURM: a cell's time limit in minutes")
    g.add_argument("--dry-run", action="store_true", help="list the cells and what each would do, run nothing")
    t = p.add_argument_group("tracking (optional: pip install 'mrd[wandb]')")
    t.add_argument("--wandb", action="store_true", help="log each finished cell to Weights & Biases (offline)")
    t.add_argument("--wandb-project", default="mrd")
    t.add_argument("--wandb-name", help="W&B group name of the sweep (default: the sweep folder's name)")
    t.add_argument("--wandb-online", action="store_true", help="log online instead of offline (needs wandb login)")
    add_run_flags(p)   # `--out` is the sweep folder here; every other flag goes to every cell
    p.set_defaults(func=cmd_sweep)
    return p


def _spec_from_args(args) -> dict:
    from .grid import read_sweep_file
    spec = read_sweep_file(args.sweep_file) if args.sweep_file else {}
    for key in ("scenes", "envmaps", "models", "seeds", "modes"):
        if getattr(args, key, None):
            spec[key] = getattr(args, key)
    if getattr(args, "seed", None) is not None and not args.seeds:
        spec["seeds"] = [args.seed]
    if getattr(args, "mode", None) is not None and not args.modes:
        spec["modes"] = [args.mode]
    return spec


class Progress:
    """A progress bar over the grid and one line per cell as it ends; the sweep's state in sweep.json."""

    def __init__(self, cells, sweep_dir: Path, state: dict, quiet=False):
        from tqdm import tqdm
        self.sweep_dir, self.state = sweep_dir, state
        self.bar = tqdm(total=len(cells), desc="sweep", unit="cell", file=sys.stderr, disable=quiet)
        self.quiet = quiet

    def __call__(self, res: dict):
        self.state["cells"][res["name"]].update({k: v for k, v in res.items() if k != "name"})
        self.bar.update(1)
        msg = f"{res['name']}: {res.get('status')}"
        if res.get("action") not in (None, "fresh"):
            msg += f" ({res['action']})"
        if res.get("seconds"):
            msg += f" in {res['seconds']:.1f} s"
        if res.get("error"):
            msg += f": {res['error']}"
        elif res.get("status") not in ("done", "stopped_early") and res.get("log"):
            msg += f", see {res['log']}"
        if not self.quiet:
            self.bar.write(msg, file=sys.stderr)
        write_state(self.sweep_dir, self.state)

    def close(self):
        self.bar.close()


def write_state(sweep_dir: Path, state: dict) -> None:
    p = sweep_dir / "sweep.json"
    text = json.dumps(state, indent=1, default=str)
    atomic_write(p, lambda tmp: tmp.write_text(text))


def run_sweep(cells, sweep_dir: Path, opts, wandb: dict | None = None, quiet=False, dry_run=False) -> dict:
    """Runs the cells that are not finished on the engine, then writes the aggregates. Returns sweep.json's state."""
    from .aggregate import write_aggregates
    from .cell import marker, plan
    from .engines import run_cells
    sweep_dir.mkdir(parents=True, exist_ok=True)
    plans = {c.name: plan(sweep_dir / c.name) for c in cells}
    state = {"version": SWEEP_VERSION, "kind": "mrd-sweep", "started": time.time(),
             "cells": {c.name: {**c.to_dict(), "action": plans[c.name]} for c in cells}}
    todo = [c for c in cells if plans[c.name] not in ("skip", "busy")]
    log = (lambda *a: None) if quiet else (lambda m: print(m, file=sys.stderr))
    busy = sum(p == "busy" for p in plans.values())
    log(f"mrd sweep: {len(cells)} cells in {sweep_dir}: {len(cells) - len(todo) - busy} finished, "
        + (f"{busy} running elsewhere, " if busy else "") + f"{len(todo)} to run"
        + "".join(f"\n  {c.name}: {plans[c.name]}" for c in cells if plans[c.name] not in ("skip", "fresh")))
    if dry_run:
        for c in cells:
            print(f"{c.name}: {plans[c.name]}: mrd optimize {' '.join(c.argv(sweep_dir / c.name))}")
        return state
    for c in cells:
        if plans[c.name] == "skip":
            state["cells"][c.name]["status"] = "done (earlier)"
            marker(sweep_dir / c.name).unlink(missing_ok=True)   # left by a worker killed just after its run ended
        elif plans[c.name] == "busy":
            state["cells"][c.name]["status"] = "running elsewhere (rerun when it has ended)"
    if todo:
        task_kw = {"wandb": wandb} if wandb else {}
        progress = Progress(todo, sweep_dir, state, quiet)
        t0 = time.perf_counter()
        try:
            state["engine"] = run_cells(todo, sweep_dir, opts, progress, task_kw)
        finally:
            progress.close()
        state["engine"]["wall_seconds"] = time.perf_counter() - t0
    state["finished"] = time.time()
    write_state(sweep_dir, state)
    paths = write_aggregates([c.to_dict() for c in cells], sweep_dir, state)
    state["aggregates"] = {k: [str(x) for x in v] if isinstance(v, list) else str(v) for k, v in paths.items()}
    write_state(sweep_dir, state)
    return state


def cmd_sweep(args) -> int:
    from .engines import EngineOptions
    from .grid import check_names, expand, flags_from_args, grid_id
    cells = expand(_spec_from_args(args), flags_from_args(args))
    check_names(cells)
    if args.executor != "ray" and args.address:
        raise MRDError("--address is for Ray; with --executor slurm give --partition")
    if args.executor == "slurm" and not args.partition:
        raise MRDError("--executor slurm needs --partition NAME (the SLURM partition to submit the cells to)")
    sweep_dir = Path(args.out or f"results/sweep-{grid_id(cells)}")
    if (sweep_dir / "report.json").exists():
        raise MRDError(f"{sweep_dir} is a run folder, not a sweep folder: give --out a new or a sweep folder")
    opts = EngineOptions(executor=args.executor, address=args.address, cpus_per_cell=args.cpus_per_cell,
                         memory_per_cell_gb=args.memory_per_cell,
                         gpus_per_cell=args.gpus_per_cell, max_parallel=args.max_parallel, partition=args.partition,
                         timeout_min=args.timeout_min)
    wandb = None
    if args.wandb:
        from .tracking import check_wandb
        check_wandb()
        wandb = {"project": args.wandb_project, "group": args.wandb_name or sweep_dir.name,
                 "mode": "online" if args.wandb_online else "offline", "directory": str(sweep_dir.resolve())}
    state = run_sweep(cells, sweep_dir, opts, wandb, dry_run=args.dry_run)
    if args.dry_run:
        return 0
    statuses = [state["cells"][c.name].get("status") or "" for c in cells]
    ok = sum(s.startswith(("done", "stopped_early")) for s in statuses)
    print(f"\nsweep {sweep_dir}: {ok} of {len(cells)} cells finished")
    print(f"  table {sweep_dir / 'sweep.csv'}\n  open  {sweep_dir / 'sweep.html'}")
    if ok < len(cells):
        print("  rerun the same command to continue the unfinished cells", file=sys.stderr)
        return 1
    return 0
