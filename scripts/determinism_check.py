"""Run-to-run spread of one tiny run with a fixed seed, with and without --deterministic (docs/reliability.md).

    python scripts/determinism_check.py [--repeats 3] [--epochs 12] [--out /tmp/mrd-determinism]

Each run is its own process (as a user's would be). Prints, per setting: the largest difference of the per-step
losses between repeats, the spread of the final chamfer and loss, the verdict outcomes, and the wall time.
The machine may be shared: the times are rough.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

FLAGS = ["blob", "studio", "mae", "-n", "4", "-d", "48", "--spp", "4", "--remesh", "6", "--start", "icosphere",
         "--patience", "0"]
CONFIG = {"panel_models": [], "turntable_frames": 0}  # the verdict without the slow cross-model panel


def one(out: Path, epochs: int, deterministic: bool) -> dict:
    out.parent.mkdir(parents=True, exist_ok=True)
    config = out.parent / "config.json"
    config.write_text(json.dumps(CONFIG))
    cmd = [sys.executable, "-m", "mrd_backend.cli", "optimize", *FLAGS, "-e", str(epochs), "--out", str(out),
           "--config", str(config)]
    if deterministic:
        cmd.append("--deterministic")
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    r = json.loads((out / "report.json").read_text())
    v = r.get("evidence", {}).get("verdict", {})
    return {"seconds": time.perf_counter() - t0, "losses": [s["loss"] for s in r["steps"]],
            "chamfer": r["chamfer"]["end"], "loss_end": r["loss"]["end"], "outcome": v.get("outcome"),
            "bf": float(m.group(1)) if (m := re.search(r"BF\+0 = ([0-9.eE+-]+)", v.get("sentence") or "")) else None}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--out", default="/tmp/mrd-determinism")
    a = p.parse_args()
    summary = {}
    runs = {False: [], True: []}
    for k in range(a.repeats):  # alternating, so that a change in the machine's load hits both settings alike
        for det in (False, True):
            runs[det].append(one(Path(a.out) / f"{'det' if det else 'default'}-{k}", a.epochs, det))
    for det, rs in runs.items():
        first = rs[0]["losses"]
        step_diff = [max(abs(x - y) / max(abs(y), 1e-30) for x, y in zip(r["losses"], first)) for r in rs[1:]]
        first_step = min((next((i for i, (x, y) in enumerate(zip(r["losses"], first)) if x != y), len(first))
                          for r in rs[1:]), default=None)
        s = {"deterministic": det, "seconds": [round(r["seconds"], 1) for r in rs],
             "max_relative_loss_difference": max(step_diff or [0.0]), "first_differing_step": first_step,
             "chamfer_end": [r["chamfer"] for r in rs], "loss_end": [r["loss_end"] for r in rs],
             "bf_plus0": [r["bf"] for r in rs], "verdicts": [r["outcome"] for r in rs]}
        summary["deterministic" if det else "default"] = s
        print(json.dumps(s), flush=True)
    Path(a.out, "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
