"""Optional Weights & Biases tracking of sweep cells (`mrd sweep --wandb`; `pip install 'mrd[wandb]'`).

Like the research code, each run becomes one W&B run: its config, loss and similarity per step, the target and
result render grids and the final report (summary numbers, report.json as a file). Logged from the run folder when
the cell ends, in OFFLINE mode unless asked otherwise, so it needs no account and no network; upload later with
`wandb sync SWEEP_DIR/wandb/offline-run-*`.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import MRDError


def check_wandb() -> None:
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise MRDError("--wandb needs the wandb package: pip install 'mrd[wandb]' (or wandb)") from None


def _summary(report: dict) -> dict:
    out = {"status": report.get("status"), "seconds": report.get("seconds")}
    for key in ("similarity", "loss", "chamfer", "normal_consistency"):
        for end in ("start", "end"):
            v = (report.get(key) or {}).get(end)
            if v is not None:
                out[f"{key}/{end}"] = v
    v = (report.get("evidence") or {}).get("verdict") or {}
    if v.get("outcome"):
        out["verdict/outcome"] = v["outcome"]
        out["verdict/sentence"] = v.get("sentence")
    return out


def log_run(run_dir: str | Path, project: str = "mrd", name: str | None = None, mode: str = "offline",
            group: str | None = None, directory: str | Path | None = None) -> dict:
    """Logs one finished run folder to W&B; returns {mode, dir, id}."""
    import wandb
    run_dir = Path(run_dir)
    report = json.loads((run_dir / "report.json").read_text())
    config = report.get("config") or {}
    wdir = Path(directory or run_dir.parent)
    wdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_SILENT", "true")
    run = wandb.init(project=project, name=name or run_dir.name, group=group, mode=mode, dir=str(wdir),
                     config={**config, "scene": report.get("scene"), "envmap": report.get("envmap"),
                             "model": report.get("model"), "weights": report.get("weights")},
                     reinit="create_new", settings=wandb.Settings(console="off", x_disable_stats=True))
    try:
        for s in report.get("steps") or []:
            row = {k: s[k] for k in ("loss", "similarity", "seconds", "lr", "n_vertices") if s.get(k) is not None}
            render = (s.get("files") or {}).get("render")
            if render and (run_dir / render).is_file():   # the render grid of this step, as the research code logged
                row["renders/step"] = wandb.Image(str(run_dir / render))
            run.log(row, step=int(s.get("step", 0)))
        images = {}
        for key, rel in (("renders/target", "renders/target_grid.png"), ("renders/final", "renders/final_grid.png")):
            if (run_dir / rel).is_file():
                images[key] = wandb.Image(str(run_dir / rel))
        if images:
            run.log(images, step=int((report.get("steps") or [{}])[-1].get("step", 0)))
        run.summary.update(_summary(report))
        run.save(str(run_dir / "report.json"), base_path=str(run_dir), policy="now")
        out = {"mode": mode, "dir": str(run.dir), "id": run.id}
    finally:
        run.finish()
    return out
