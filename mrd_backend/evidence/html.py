"""report.html: one self-contained page per run folder that shows the run in ten seconds.

The verdict sentence first, then its three findings side by side (equivalence to the noise ceiling on held-out
views, an informative network, the physical difference), the key numbers, the target and result grids, the
turntables, the curves, the per-view paired scores, the cross-model table, the similarity/pixel/RSA tables with the
RDMs, the FLIP maps, the null distribution with the run marked, and the research-compatible statistics. Images are
referenced relative to the run folder (or embedded as data URIs with embed=True); there is no external CSS, JS or
font, and a Content-Security-Policy forbids any network access. A tiny inline script marks images that fail to load
(and records them in <html data-mrd-check=...>).

The page is the template templates/report.html.j2 (autoescaped); this module gathers what it shows from report.json
and the run folder.
"""
from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import jinja2

from ..atomic import atomic_write
from ..errors import MRDError
from .schema import load_report
from .stats import bf_text

_MIME = {"png": "image/png", "gif": "image/gif", "jpg": "image/jpeg", "jpeg": "image/jpeg", "svg": "image/svg+xml",
         "webp": "image/webp"}


def _num(x, digits: int = 4) -> str:
    """A number as the page shows it: `digits` significant digits, 3 and an exponent when very large or small,
    "—" when missing or not finite."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(x):
        return "—"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.3g}"
    return f"{x:.{digits}g}"


def _image_src(run_dir: Path, embed: bool):
    """rel -> the <img src> of run_dir/rel (a data URI with `embed`), or None when the file is missing or empty."""
    def src(rel: str) -> str | None:
        p = run_dir / rel
        if not p.is_file() or p.stat().st_size == 0:
            return None
        if embed:
            mime = _MIME.get(p.suffix.lower().lstrip("."), "image/png")
            return f"data:{mime};base64,{base64.b64encode(p.read_bytes()).decode('ascii')}"
        return "/".join(Path(rel).parts)
    return src


def _first_existing(run_dir: Path, names) -> str | None:
    for n in names:
        if n and (run_dir / n).is_file():
            return n
    return None


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("mrd_backend.evidence", "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined, extensions=["jinja2.ext.do"])
    env.filters.update(num=_num, bf=bf_text)
    return env


def _headline(report: dict, verdict: dict) -> tuple[str, str]:
    """The sentence at the top of the page and its outcome (the colour of its box)."""
    status = str(report.get("status", "unknown"))
    if verdict.get("sentence"):
        return verdict["sentence"], verdict.get("outcome", "undetermined")
    if status == "failed":
        return f"The run failed: {report.get('error') or 'no error message'}", "none"
    if status == "running":
        return "The run is still going; the evidence is computed at its end.", "none"
    return f"No verdict: the run ended as {status} before the evidence was computed.", "none"


def build_html(report: dict, run_dir: Path, embed: bool = False) -> str:
    ev = report.get("evidence") or {}
    files = report.get("files") or {}
    verdict = ev.get("verdict") or {}
    status = str(report.get("status", "unknown"))
    model, weights = report.get("model", "?"), report.get("weights", "?")
    shown = f"{model} ({weights})" if weights not in ("none", "", None) else str(model)
    sentence, outcome = _headline(report, verdict)

    def named(key: str, *fallbacks: str) -> str | None:  # a file the report names, else the usual places
        return _first_existing(run_dir, [files.get(key) if isinstance(files.get(key), str) else None, *fallbacks])

    notes = list(ev.get("notes") or [])
    if report.get("error") and status != "failed":
        notes.append(f"error: {report['error']}")
    settings = {k: report.get(k) for k in ("config", "objective", "integrator", "versions", "variant", "preprocess")}
    return _environment().get_template("report.html.j2").render(
        report=report, ev=ev, efiles=ev.get("files") or {}, verdict=verdict, model=model, status=status,
        research=ev.get("research") or (verdict if "bayes" in verdict else {}),  # older reports: research only
        title=f"{report.get('scene', '?')} · {shown} · {report.get('envmap', '?')}", sentence=sentence,
        outcome=outcome, src=_image_src(run_dir, embed),
        target_grid=named("target_grid", "renders/target_grid.png"),
        final_grid=named("final_grid", "renders/final_grid.png"),
        turntable=_first_existing(run_dir, ["renders/turntable.gif", "turntable.gif"]),
        turntable_target=_first_existing(run_dir, ["renders/turntable_target.gif", "renders/target_turntable.gif"]),
        video=files.get("video") if isinstance(files.get("video"), str) else None,
        curves=named("curves", "curves.png"), notes=notes, settings=json.dumps(settings, indent=1, default=str))


def write_report_html(run_dir: str | Path, embed: bool = False, validate: bool = False) -> Path:
    """Writes RUN_DIR/report.html from RUN_DIR/report.json and the images in the folder; returns its path.
    A folder without report.json, or a report of another version, is an MRDError."""
    run_dir = Path(run_dir)
    report = load_report(run_dir, validate=validate)
    text = build_html(report, run_dir, embed=embed)
    out = run_dir / "report.html"
    try:
        atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    except OSError as exc:
        raise MRDError(f"cannot write {out} ({exc.strerror}): check the folder's permissions") from None
    return out
