"""The cost of the sweep engine per cell against the cell's own run time, at tiny sizes, and how many cells run at
once on this machine.

    python scripts/bench_sweep.py [--cells 4] [--executor ray] [--evidence] [--out DIR]

1. one cell by hand (`mrd optimize` in a subprocess): what the cell costs without any engine;
2. the same grid through `mrd sweep` one cell at a time (--max-parallel 1): the engine's start-up and shut-down
   (once per sweep), its gap per cell (dispatch, worker, result), and both against the cells' own seconds;
3. the grid again with the engine's default parallelism: the cells that ran at once (from their start and end
   times) and the wall-clock speed-up.
Timings on a shared machine move with the other load; the ratios are what carries over.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SCENES = ["blob", "knot", "suzanne", "blob"]


def tiny(evidence: bool) -> list[str]:
    args = ["--epochs", "2", "--dims", "32", "--spp", "2", "--nviews", "2"]
    return args if evidence else args + ["--no-evidence", "--panel-every", "-1"]


def sweep(out: Path, n: int, executor: str, evidence: bool, *extra) -> dict:
    seeds = [str(s) for s in range(1, n + 1)]
    cmd = [sys.executable, "-m", "mrd_backend.cli", "sweep", "--scenes", "blob", "--envmaps", "constant",
           "--models", "mae", "--seeds", *seeds, *tiny(evidence), "--out", str(out), "--executor", executor, *extra]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"sweep failed: {r.stderr[-2000:]}")
    state = json.loads((out / "sweep.json").read_text())
    state["command_seconds"] = wall
    return state


def at_once(cells: dict) -> int:
    events = []
    for c in cells.values():
        if c.get("seconds"):
            s = c["started"]
            events += [(s, 1), (s + c["seconds"], -1)]
    best = cur = 0
    for _, d in sorted(events, key=lambda e: (e[0], e[1])):
        cur += d
        best = max(best, cur)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", type=int, default=4)
    ap.add_argument("--executor", default="ray", choices=["ray", "local"])
    ap.add_argument("--evidence", action="store_true", help="cells with the end-of-run evidence (slower cells)")
    ap.add_argument("--out", help="keep the sweep folders here (default: a temporary folder, removed)")
    a = ap.parse_args()
    base = Path(a.out or tempfile.mkdtemp(prefix="mrd-bench-sweep-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mrd_backend.cli", "optimize", "blob", "constant", "mae", "--seed", "1",
                        *tiny(a.evidence), "--out", str(base / "by-hand")], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                       check=True, capture_output=True)
        by_hand = time.perf_counter() - t0
        serial = sweep(base / "serial", a.cells, a.executor, a.evidence, "--max-parallel", "1")
        cells = sorted(serial["cells"].values(), key=lambda c: c["started"])
        own = sum(c["seconds"] for c in cells)
        eng = serial["engine"]
        startup = eng.get("init_seconds", 0) + eng.get("shutdown_seconds", 0)
        # between one cell's end and the next one's start, one at a time: the engine's cost per cell
        gaps = sorted(nxt["started"] - (prev["started"] + prev["seconds"]) for prev, nxt in zip(cells, cells[1:]))
        gap = gaps[len(gaps) // 2] if gaps else float("nan")
        first = eng["wall_seconds"] - startup - own - sum(gaps)   # first worker's start, the last result's return
        rest = serial["command_seconds"] - eng["wall_seconds"]
        mean_cell = own / a.cells
        parallel = sweep(base / "parallel", a.cells, a.executor, a.evidence)
        print(f"engine {eng['engine']} ({eng.get('address', '')}), {a.cells} cells of blob/constant/mae at 32 px, "
              f"2 views, 2 epochs, 2 spp{'' if a.evidence else ', no evidence'}; shared machine: "
              f"{os.getloadavg()[0]:.1f} load average now")
        print(f"one cell by hand (mrd optimize):        {by_hand:7.1f} s")
        print(f"one cell in the sweep (mean, serial):   {mean_cell:7.1f} s   (its own process, as by hand)")
        print(f"engine cost per cell (end -> next start, median): {gap:6.3f} s = {100 * gap / mean_cell:5.2f} % of a cell")
        print(f"once per sweep: engine start-up + shut-down {startup:.1f} s, first worker + last result {first:.1f} s, "
              f"mrd sweep's imports + aggregates (csv, figures, html) {rest:.1f} s")
        total = (serial["command_seconds"] - own) / a.cells
        print(f"everything spread over these {a.cells} cells: {total:.2f} s per cell = {100 * total / mean_cell:.1f} % "
              f"(falls as 1/cells: {100 * (total * a.cells - gap * a.cells) / (40 * mean_cell) + 100 * gap / mean_cell:.1f} % "
              f"over 40 such cells)")
        pc = parallel["engine"]
        print(f"cells at once here: {at_once(parallel['cells'])} observed (engine's resources allow "
              f"{pc.get('cells_at_once')}: {json.dumps(pc.get('resources', {}))}); wall {parallel['command_seconds']:.1f}"
              f" s vs {serial['command_seconds']:.1f} s one at a time")
    finally:
        if not a.out:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
