"""A sweep's aggregates, written into the sweep folder: `sweep.csv` (one row per cell), the paper's figures as PNG
(outcome grid, final similarity with its noise ceiling, similarity curves per scene, ECDF of result-vs-null
similarity, aggregate similarity vs step, bootstrap intervals over seeds) and `sweep.html`, one self-contained page
(images inlined, no network) that a browser opens from the folder."""
from __future__ import annotations

import base64
import csv
import json
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..outputs.figures import save_figure
from ..protocol import finite as _finite

# Verdict outcomes: w16's (metamer, reconstruction, not_metamer, inconclusive, uninformative) and the older
# supported / not supported / inconclusive, each with one colour.
OUTCOME_COLOURS = {"metamer": "#3c9a4d", "supported": "#3c9a4d", "reconstruction": "#4a78c2",
                   "not_metamer": "#c8483c", "not supported": "#c8483c", "not-supported": "#c8483c",
                   "inconclusive": "#e3b53c", "uninformative": "#9a9a9a", "no verdict": "#e6e6e6",
                   "unfinished": "#ffffff"}
CSV_FIELDS = ["cell", "scene", "envmap", "model", "seed", "mode", "status", "outcome", "similarity_start",
              "similarity_end", "heldout_similarity", "noise_ceiling", "null_percentile", "bf_plus0", "chamfer_start", "chamfer_end",
              "steps", "run_seconds", "weights", "run_dir"]


def _report(run_dir: Path) -> dict | None:
    try:
        return json.loads((run_dir / "report.json").read_text())
    except (OSError, ValueError):
        return None


def cell_record(cell: dict, sweep_dir: Path) -> dict:
    """The numbers of one cell's run folder (empty ones when it has not finished)."""
    run_dir = sweep_dir / cell["name"]
    r = _report(run_dir) or {}
    ev = r.get("evidence") or {}
    v = ev.get("verdict") or {}
    null = ev.get("null") or {}
    deciding = v.get("deciding") or {}
    outcome = v.get("outcome")
    if not outcome:
        outcome = "no verdict" if r.get("status") in ("done", "stopped_early") else "unfinished"
    steps = r.get("steps") or []
    return {"cell": cell["name"], "scene": cell["scene"], "envmap": cell["envmap"], "model": cell["model"],
            "seed": cell.get("seed") if cell.get("seed") is not None else (r.get("config") or {}).get("seed"),
            "mode": r.get("mode") or cell.get("mode"), "status": r.get("status") or "not started",
            "outcome": outcome,
            "similarity_start": _finite((r.get("similarity") or {}).get("start")),
            "similarity_end": _finite((r.get("similarity") or {}).get("end")),
            # the held-out similarity the verdict tested, and its noise ceiling (the target re-rendered with other
            # seeds: the best a result can reach); older reports: the null distribution's re-rendered target
            "heldout_similarity": _finite(deciding.get("heldout_similarity")),
            "noise_ceiling": _finite(deciding.get("ceiling", null.get("target_resample"))),
            "null_percentile": _finite(null.get("percentile")),
            "bf_plus0": _finite((v.get("bayes") or (ev.get("research") or {}).get("bayes") or {}).get("bf_plus0")),
            "chamfer_start": _finite((r.get("chamfer") or {}).get("start")),
            "chamfer_end": _finite((r.get("chamfer") or {}).get("end")),
            "steps": len(steps), "run_seconds": _finite(r.get("seconds")), "weights": r.get("weights"),
            "run_dir": str(run_dir),
            "curve": [(s.get("step"), _finite(s.get("similarity"))) for s in steps],
            "report_html": str(run_dir / "report.html") if (run_dir / "report.html").is_file() else None}


def write_csv(records: list, path: Path) -> Path:
    def write(tmp):
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
            w.writeheader()
            for rec in records:
                w.writerow({k: ("" if rec.get(k) is None else rec.get(k)) for k in CSV_FIELDS})
    return atomic_write(path, write)


def bootstrap_ci(values, draws: int = 2000, level: float = 0.95, seed: int = 0):
    """Mean and percentile-bootstrap interval of the mean (None for fewer than two values)."""
    v = np.asarray([x for x in values if x is not None], np.float64)
    if len(v) < 2:
        return None
    rng = np.random.default_rng(seed)
    means = rng.choice(v, size=(draws, len(v)), replace=True).mean(axis=1)
    lo, hi = np.percentile(means, [50 * (1 - level), 50 * (1 + level)])
    return {"n": int(len(v)), "mean": float(v.mean()), "lo": float(lo), "hi": float(hi)}


def seed_groups(records: list) -> list:
    groups = {}
    for r in records:
        groups.setdefault((r["scene"], r["envmap"], r["model"], r["mode"]), []).append(r)
    out = []
    for (scene, envmap, model, mode), rs in groups.items():
        ci = bootstrap_ci([r["similarity_end"] for r in rs])
        if ci:
            out.append({"scene": scene, "envmap": envmap, "model": model, "mode": mode, **ci})
    return out


# -- figures ----------------------------------------------------------------------------------------------------

def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path) -> Path:
    return save_figure(fig, path, dpi=110, bbox_inches="tight")


def _rows_cols(records):
    rows = sorted({f"{r['scene']} / {r['envmap']}" for r in records})
    cols = sorted({r["model"] for r in records})
    return rows, cols


def fig_outcomes(records, path):
    """Scene x network, each square coloured by the verdict outcome (several seeds: one stripe each)."""
    plt = _plt()
    from matplotlib.patches import Patch, Rectangle
    rows, cols = _rows_cols(records)
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(cols), 1.0 + 0.55 * len(rows)))
    for i, row in enumerate(rows):
        for j, col in enumerate(cols):
            rs = [r for r in records if f"{r['scene']} / {r['envmap']}" == row and r["model"] == col]
            for k, r in enumerate(rs):
                w = 1.0 / len(rs)
                ax.add_patch(Rectangle((j + k * w, i), w, 1, facecolor=OUTCOME_COLOURS.get(r["outcome"], "#ccc"),
                                       edgecolor="white", lw=1.5))
    ax.set_xlim(0, len(cols)), ax.set_ylim(len(rows), 0)
    ax.set_xticks(np.arange(len(cols)) + 0.5, cols, rotation=30, ha="right")
    ax.set_yticks(np.arange(len(rows)) + 0.5, rows)
    seen = sorted({r["outcome"] for r in records})
    ax.legend(handles=[Patch(color=OUTCOME_COLOURS.get(o, "#ccc"), label=o) for o in seen],
              bbox_to_anchor=(1.02, 1), loc="upper left", fontsize=8, frameon=False)
    ax.set_title("verdict per cell (scene x network)")
    return _save(fig, path)


def fig_final_similarity(records, path):
    plt = _plt()
    rs = [r for r in records if r["similarity_end"] is not None]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(rs) + 1.5), 3.4))
    x = np.arange(len(rs))
    ax.bar(x, [r["similarity_end"] for r in rs], color=[OUTCOME_COLOURS.get(r["outcome"], "#888") for r in rs],
           edgecolor="#444", lw=0.5, label="final similarity")
    ax.scatter(x, [r["similarity_start"] if r["similarity_start"] is not None else np.nan for r in rs],
               marker="_", s=200, color="k", label="start")
    held = [r["heldout_similarity"] if r["heldout_similarity"] is not None else np.nan for r in rs]
    if np.isfinite(held).any():
        ax.scatter(x, held, marker="o", color="C0", label="held-out views", zorder=3)
    ceil = [r["noise_ceiling"] if r["noise_ceiling"] is not None else np.nan for r in rs]
    if np.isfinite(ceil).any():
        ax.scatter(x, ceil, marker="v", color="C3", label="noise ceiling (target re-rendered)", zorder=3)
    ax.set_xticks(x, [r["cell"] for r in rs], rotation=40, ha="right", fontsize=7)
    ax.set_ylabel("similarity under the run's model")
    vals = [v for r in rs for v in (r["similarity_end"], r["similarity_start"], r["noise_ceiling"],
                                             r["heldout_similarity"]) if v is not None]
    if vals:
        lo, hi = min(vals), max(vals)
        pad = 0.1 * (hi - lo or abs(hi) or 1)
        ax.set_ylim(lo - pad, hi + pad)
    ax.legend(fontsize=7, frameon=False)
    ax.set_title("final similarity per cell")
    return _save(fig, path)


def fig_curves(records, path):
    plt = _plt()
    scenes = sorted({f"{r['scene']} / {r['envmap']}" for r in records})
    fig, axes = plt.subplots(1, max(1, len(scenes)), figsize=(3.6 * max(1, len(scenes)), 3.0), squeeze=False)
    for ax, sc in zip(axes[0], scenes):
        for r in records:
            if f"{r['scene']} / {r['envmap']}" != sc:
                continue
            pts = [(s, v) for s, v in r["curve"] if s is not None and v is not None]
            if pts:
                label = r["model"] + (f" s{r['seed']}" if r.get("seed") is not None else "")
                ax.plot(*zip(*pts), marker=".", label=label)
        ax.set_title(sc, fontsize=9)
        ax.set_xlabel("step (epoch)")
        ax.legend(fontsize=7, frameon=False)
    axes[0][0].set_ylabel("similarity")
    return _save(fig, path)


def fig_null_ecdf(records, path):
    """The empirical CDF of the runs' percentiles among the null objects: how far each result is above other
    objects' similarity to the target (only cells whose run had a null distribution)."""
    plt = _plt()
    pct = np.sort([r["null_percentile"] for r in records if r["null_percentile"] is not None])
    fig, ax = plt.subplots(figsize=(4.2, 3.0))
    if len(pct):
        ax.step(pct, np.arange(1, len(pct) + 1) / len(pct), where="post")
        ax.set_xlim(0, 100)
    else:
        ax.text(0.5, 0.5, "no cell has a null distribution\n(build one with `mrd null SCENE ENVMAP MODEL`)",
                ha="center", va="center", transform=ax.transAxes, fontsize=8)
    ax.set_xlabel("result's percentile among null objects")
    ax.set_ylabel("fraction of cells")
    ax.set_title("ECDF: result vs null similarity", fontsize=9)
    return _save(fig, path)


def fig_aggregate(records, path):
    """1 - similarity (the distance to the target's features) against step, mean over cells per model, log-log."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    for model in sorted({r["model"] for r in records}):
        curves = {}
        for r in records:
            if r["model"] == model:
                for s, v in r["curve"]:
                    if s is not None and v is not None:
                        curves.setdefault(s, []).append(1.0 - v)
        steps = sorted(curves)
        ys = [float(np.mean(curves[s])) for s in steps]
        keep = [(s + 1, y) for s, y in zip(steps, ys) if y > 0]
        if keep:
            ax.plot(*zip(*keep), marker=".", label=model)
    ax.set_xscale("log"), ax.set_yscale("log")
    ax.set_xlabel("step + 1")
    ax.set_ylabel("1 - similarity (mean over cells)")
    ax.legend(fontsize=7, frameon=False)
    ax.set_title("aggregate similarity vs step", fontsize=9)
    return _save(fig, path)


def fig_seeds(groups, path):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.7 * len(groups) + 1.5), 3.0))
    if groups:
        x = np.arange(len(groups))
        m = np.array([g["mean"] for g in groups])
        ax.errorbar(x, m, yerr=[m - [g["lo"] for g in groups], [g["hi"] for g in groups] - m], fmt="o", capsize=4)
        ax.set_xticks(x, [f"{g['scene']}/{g['model']} (n={g['n']})" for g in groups], rotation=30, ha="right",
                      fontsize=7)
        ax.set_ylabel("final similarity, 95 % bootstrap CI")
    else:
        ax.text(0.5, 0.5, "no cell has several seeds (--seeds 1 2 3)", ha="center", va="center",
                transform=ax.transAxes, fontsize=8)
    ax.set_title("over seeds", fontsize=9)
    return _save(fig, path)


FIGURES = [("outcomes", fig_outcomes, "Verdict per cell: scene x network"),
           ("final_similarity", fig_final_similarity, "Final similarity per cell (bar), its start (dash), the "
                                                      "held-out views' similarity (dot) and their noise ceiling "
                                                      "(triangle)"),
           ("curves", fig_curves, "Similarity per step, per scene"),
           ("null_ecdf", fig_null_ecdf, "Where each result falls among other objects (null distribution)"),
           ("aggregate", fig_aggregate, "Distance to the target's features against step, log-log")]


def write_aggregates(cells: list, sweep_dir: Path, state: dict | None = None) -> dict:
    """sweep.csv, figures/*.png and sweep.html for the cells (dicts with name, scene, envmap, model, seed, mode)."""
    sweep_dir = Path(sweep_dir)
    records = [cell_record(c, sweep_dir) for c in cells]
    paths = {"csv": write_csv(records, sweep_dir / "sweep.csv")}
    fdir = sweep_dir / "figures"
    fdir.mkdir(exist_ok=True)
    figures = []
    for name, fn, caption in FIGURES:
        p = fn(records, fdir / f"{name}.png")
        figures.append({"name": name, "caption": caption, "path": p})
    groups = seed_groups(records)
    figures.append({"name": "seeds", "caption": "Bootstrap intervals of the final similarity over seeds",
                    "path": fig_seeds(groups, fdir / "seeds.png")})
    paths["figures"] = [f["path"] for f in figures]
    paths["html"] = write_html(records, figures, groups, sweep_dir, state or {})
    return paths


def write_html(records, figures, groups, sweep_dir: Path, state: dict) -> Path:
    import jinja2
    env = jinja2.Environment(loader=jinja2.PackageLoader("mrd_backend.sweep", "templates"),
                             autoescape=jinja2.select_autoescape(["html"]))
    for f in figures:
        f["data"] = "data:image/png;base64," + base64.b64encode(Path(f["path"]).read_bytes()).decode()
    for r in records:
        r["colour"] = OUTCOME_COLOURS.get(r["outcome"], "#ccc")
        r["report_uri"] = Path(r["report_html"]).resolve().as_uri() if r["report_html"] else None
    counts = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    page = env.get_template("sweep.html.j2").render(
        title=f"mrd sweep: {sweep_dir.name}", records=records, figures=figures, groups=groups, counts=counts,
        state=state, fmt=lambda x, n=4: "—" if x is None else f"{x:.{n}f}")
    path = sweep_dir / "sweep.html"
    return atomic_write(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
