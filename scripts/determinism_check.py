"""Run-to-run spread of one tiny run with a fixed seed, with and without --deterministic (docs/reliability.md).

    python scripts/determinism_check.py [--repeats 3] [--epochs 12] [--out /tmp/mrd-determinism]

Each run is its own process (as a user's would be). Prints, per setting: the largest difference of the per-step
losses between repeats, the spread of the final chamfer and loss, the verdict outcomes, and the wall time.
The machine may be shared: the times are rough.
"""
from __future__ import annotations

import argparse
import json
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
            "sentence": v.get("sentence")}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--out", default="/tmp/mrd-determinism")
    a = p.parse_args()
    summary = {}
    for det in (False, True):
        runs = [one(Path(a.out) / f"{'det' if det else 'default'}-{k}", a.epochs, det) for k in range(a.repeats)]
        first = runs[0]["losses"]
        step_diff = [max(abs(x - y) / max(abs(y), 1e-30) for x, y in zip(r["losses"], first)) for r in runs[1:]]
        first_step = next((i for i, (x, y) in enumerate(zip(runs[1]["losses"], first)) if x != y), None) \
            if len(runs) > 1 else None
        s = {"deterministic": det, "seconds": [round(r["seconds"], 1) for r in runs],
             "max_relative_loss_difference": max(step_diff or [0.0]), "first_differing_step": first_step,
             "chamfer_end": [r["chamfer"] for r in runs], "loss_end": [r["loss_end"] for r in runs],
             "verdicts": [r["outcome"] for r in runs]}
        summary["deterministic" if det else "default"] = s
        print(json.dumps(s), flush=True)
    Path(a.out, "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
