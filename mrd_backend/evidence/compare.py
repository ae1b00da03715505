"""`mrd compare RUN_DIR...`: one table across runs, like the research code's result grids.

Rows are scenes (scene / envmap), columns are models (with their weights when not pretrained), and each cell is the
run's final similarity under its own model and its verdict: the outcome (metamer, reconstruction, not_metamer,
inconclusive, uninformative) and, for reference, the research-compatible BF+0 against the rotated control. Written
as CSV and as a self-contained HTML table, and printed one line per cell. A folder that is not a run folder, or a
report of another version, stops with a one-line error; when several runs share a cell the most recent one is
shown and the others are listed under the table.
"""
from __future__ import annotations

import csv
import html
import math
from pathlib import Path

from ..errors import MRDError
from .schema import load_report
from .stats import bf_text


def _weights_tag(weights: str) -> str:
    w = str(weights)
    if w in ("pretrained", "none", ""):
        return ""
    return "untrained" if w == "untrained" else f"weights {Path(w).name}"


def run_record(run_dir: str | Path) -> dict:
    """The numbers of one run folder that the table shows."""
    run_dir = Path(run_dir)
    r = load_report(run_dir)
    ev = r.get("evidence") or {}
    v = ev.get("verdict") or {}
    research = ev.get("research") or (v if "bayes" in v else {})  # reports before the three-finding verdict
    b = research.get("bayes") or {}
    outcome = v.get("outcome") if "findings" in v else (f"research: {v['outcome']}" if v.get("outcome") else None)
    sim = (r.get("similarity") or {}).get("end")
    tag = _weights_tag(r.get("weights", ""))
    return {"run_dir": str(run_dir), "scene": r.get("scene"), "envmap": r.get("envmap"), "mode": r.get("mode"),
            "model": r.get("model"), "weights": r.get("weights"),
            "column": f"{r.get('model')} [{tag}]" if tag else str(r.get("model")),
            "row": f"{r.get('scene')} / {r.get('envmap')}", "status": r.get("status"), "similarity": sim,
            "outcome": outcome, "bf_plus0": b.get("bf_plus0"), "log10_bf_plus0": b.get("log10_bf_plus0"),
            "sentence": v.get("sentence"), "started": r.get("started") or 0}


def _bf_text(rec: dict) -> str:
    text = bf_text(rec, "")
    return f"research BF+0={text}" if text else ""


def cell_text(rec: dict) -> str:
    sim = rec.get("similarity")
    s = "—" if sim is None or not math.isfinite(float(sim)) else f"{float(sim):.4f}"
    if rec.get("outcome"):
        extra = ", ".join(x for x in (rec["outcome"], _bf_text(rec)) if x)
    else:
        extra = f"no verdict: {rec.get('status')}"
    return f"{s} ({extra})"


def compare_runs(run_dirs: list) -> dict:
    """{"rows": [...], "columns": [...], "cells": {(row, col): record}, "superseded": [records]}."""
    if not run_dirs:
        raise MRDError("no run folders given: mrd compare RUN_DIR [RUN_DIR ...]")
    records = [run_record(d) for d in run_dirs]
    cells, superseded = {}, []
    for rec in records:
        key = (rec["row"], rec["column"])
        old = cells.get(key)
        if old is None or rec["started"] >= old["started"]:
            if old is not None:
                superseded.append(old)
            cells[key] = rec
        else:
            superseded.append(rec)
    rows = sorted({k[0] for k in cells})
    cols = sorted({k[1] for k in cells})
    return {"rows": rows, "columns": cols, "cells": cells, "superseded": superseded}


CSS = ("body{font:14px system-ui,sans-serif;margin:20px;color:#222}table{border-collapse:collapse}"
       "th,td{border:1px solid #ddd;padding:5px 9px;text-align:center}th{background:#f2f2f0}"
       "td.metamer{background:#dcf2dc}td.not_metamer{background:#f7d9d6}td.inconclusive{background:#faf0cf}"
       "td.reconstruction{background:#dde8f7}td.uninformative{background:#e8e8e8}"
       "td small{color:#666}")


def write_compare(run_dirs: list, out: str | Path = "compare") -> tuple[Path, Path]:
    """Writes OUT.csv and OUT.html (OUT without a .csv/.html suffix); an existing folder OUT (or one written with a
    trailing slash) gets OUT/compare.csv and OUT/compare.html. Returns their paths."""
    table = compare_runs(run_dirs)
    text = str(out)
    out = Path(out)
    if out.is_dir() or text.endswith(("/", "\\")):
        out = out / "compare"
    elif out.suffix in (".csv", ".html"):
        out = out.with_suffix("")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MRDError(f"cannot write the comparison to {out.parent} ({exc.strerror or exc}): give --out a prefix "
                       "in a folder you can write to") from None
    # name + suffix, not with_suffix: a prefix like "runs.1" must not lose its ".1"
    csv_path, html_path = out.with_name(out.name + ".csv"), out.with_name(out.name + ".html")
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["scene / envmap", *table["columns"]])
        for row in table["rows"]:
            w.writerow([row, *[cell_text(table["cells"][(row, c)]) if (row, c) in table["cells"] else ""
                               for c in table["columns"]]])
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in table["columns"])
    body = []
    for row in table["rows"]:
        tds = []
        for c in table["columns"]:
            rec = table["cells"].get((row, c))
            if rec is None:
                tds.append("<td></td>")
                continue
            cls = (rec.get("outcome") or "").replace(" ", "-").replace(":", "")
            link = Path(rec["run_dir"]).resolve() / "report.html"
            name = e(Path(rec["run_dir"]).name)
            ref = f'<a href="{e(link.as_uri())}">{name}</a>' if link.is_file() else name
            tds.append(f'<td class="{e(cls)}" title="{e(rec.get("sentence") or "")}">{e(cell_text(rec))}'
                       f"<br><small>{ref}</small></td>")
        body.append(f"<tr><th>{e(row)}</th>{''.join(tds)}</tr>")
    sup = ""
    if table["superseded"]:
        items = "".join(f"<li>{e(r['run_dir'])}: {e(cell_text(r))}</li>" for r in table["superseded"])
        sup = f"<p>Older runs of the same scene and model (not shown in the table):</p><ul>{items}</ul>"
    doc = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>mrd compare</title>'
           f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">'
           f"<style>{CSS}</style></head><body><h1>mrd compare: {len(table['cells'])} runs</h1>"
           f"<p>Each cell: the final similarity under the run's own model (the verdict's outcome; the "
           f"research-compatible BF+0 against the rotated control, which does not decide).</p>"
           f"<table><thead><tr><th>scene / envmap</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
           f"{sup}</body></html>\n")
    html_path.write_text(doc, encoding="utf-8")
    return csv_path, html_path
