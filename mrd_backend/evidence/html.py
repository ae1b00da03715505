"""report.html: one self-contained page per run folder that shows the run in ten seconds.

The verdict sentence first, then its three findings side by side (equivalence to the noise ceiling on held-out
views, an informative network, the physical difference), the key numbers, the target and result grids, the
turntables, the curves, the per-view paired scores, the cross-model table, the similarity/pixel/RSA tables with the
RDMs, the FLIP maps, the null distribution with the run marked, and the research-compatible statistics. Images are referenced relative to the run folder (or embedded as data URIs
with embed=True); there is no external CSS, JS or font, and a Content-Security-Policy forbids any network access.
A tiny inline script marks images that fail to load (and records them in <html data-mrd-check=...>).
"""
from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

from ..atomic import atomic_write
from ..errors import MRDError
from .schema import load_report
from .stats import bf_text

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f6f4;color:#222}
main{max-width:1180px;margin:0 auto;padding:18px 22px 60px}
h1{font-size:20px;margin:4px 0 10px}h2{font-size:16px;margin:26px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
.verdict{font-size:18px;padding:12px 16px;border-radius:6px;background:#fff;border-left:8px solid #999;
margin:8px 0 12px}
.v-supported,.v-metamer{border-color:#2e8b57}.v-not-supported,.v-not_metamer{border-color:#c0392b}
.v-inconclusive{border-color:#d4a017}.v-reconstruction{border-color:#3a6fb0}.v-uninformative{border-color:#777}
.v-undetermined,.v-none{border-color:#888}
.findings{display:flex;flex-wrap:wrap;gap:10px;margin:6px 0 10px}
.finding{flex:1 1 300px;background:#fff;border:1px solid #e2e2e2;border-radius:5px;padding:8px 12px}
.finding h3{font-size:14px;margin:0 0 4px}.finding p{margin:3px 0;font-size:13px}
.finding .res{font-weight:600}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;background:#ddd;font-size:12px;margin-left:6px}
.st-done{background:#cdeccd}.st-failed{background:#f4c7c3}.st-cancelled,.st-stopped_early{background:#f7e3b0}
.kv{display:flex;flex-wrap:wrap;gap:8px;margin:6px 0}
.kv div{background:#fff;border:1px solid #e2e2e2;border-radius:5px;padding:6px 10px;min-width:120px}
.kv b{display:block;font-size:17px}.kv span{font-size:11px;color:#666}
.row{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
figure{margin:0;background:#fff;border:1px solid #e2e2e2;border-radius:5px;padding:6px}
figure img{display:block;max-width:100%;height:auto}
figure.grid{flex:1 1 45%}figure.grid img{width:100%;image-rendering:pixelated}
figure.anim img{width:360px;max-width:100%;image-rendering:pixelated}
td.reason{text-align:left;color:#777}
figcaption{font-size:12px;color:#555;margin-top:4px}
table{border-collapse:collapse;background:#fff;margin:6px 0;font-size:13px}
th,td{border:1px solid #e0e0e0;padding:4px 8px;text-align:right}th{background:#f0f0ee}
td:first-child,th:first-child{text-align:left}
.muted{color:#777}.broken{color:#c0392b;font-weight:bold}
pre{background:#fff;border:1px solid #e2e2e2;padding:8px;overflow:auto;font-size:12px}
"""

CHECK_JS = """
(function(){var errs=[];
window.addEventListener('error',function(e){errs.push(String(e.message||'resource error'))},true);
window.addEventListener('load',function(){var bad=[];var imgs=document.images;
for(var i=0;i<imgs.length;i++){var im=imgs[i];if(!im.complete||im.naturalWidth===0){
var name=im.getAttribute('data-name')||'image';bad.push(name);
var n=document.createElement('div');n.className='broken';n.textContent='missing image: '+name;
im.parentNode.insertBefore(n,im);}}
var check={images:imgs.length,broken:bad,errors:errs};
document.documentElement.setAttribute('data-mrd-check',JSON.stringify(check));});})();
"""

CSP = ("default-src 'none'; img-src 'self' data: file:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
       "connect-src 'none'; font-src 'none'; frame-src 'none'")


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _num(x, digits: int = 4) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    try:
        x = float(x)
    except (TypeError, ValueError):
        return _e(x)
    if not math.isfinite(x):
        return "—"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.3g}"
    return f"{x:.{digits}g}"


class _Page:
    def __init__(self, run_dir: Path, embed: bool):
        self.run_dir = run_dir
        self.embed = embed
        self.parts: list[str] = []

    def add(self, s: str):
        self.parts.append(s)

    def img_src(self, rel: str) -> str | None:
        p = self.run_dir / rel
        if not p.is_file() or p.stat().st_size == 0:
            return None
        if self.embed:
            mime = {"png": "image/png", "gif": "image/gif", "jpg": "image/jpeg", "jpeg": "image/jpeg",
                    "svg": "image/svg+xml", "webp": "image/webp"}.get(p.suffix.lower().lstrip("."), "image/png")
            return f"data:{mime};base64,{base64.b64encode(p.read_bytes()).decode('ascii')}"
        return "/".join(_e(part) for part in Path(rel).parts)

    def figure(self, rel: str | None, caption: str, width: int | None = None, cls: str = "") -> str:
        if not rel:
            return ""
        src = self.img_src(rel)
        if src is None:
            return ""
        style = f' style="max-width:{width}px"' if width else ""
        klass = f' class="{cls}"' if cls else ""
        return (f'<figure{klass}{style}><img src="{src}" alt="{_e(caption)}" data-name="{_e(rel)}" loading="eager">'
                f"<figcaption>{_e(caption)}</figcaption></figure>")


def _kv(items) -> str:
    cells = "".join(f"<div><span>{_e(k)}</span><b>{v}</b></div>" for k, v in items if v is not None)
    return f'<div class="kv">{cells}</div>'


def _table(header: list[str], rows: list) -> str:
    """Rows are lists of cell HTML, or one string of ready <td> cells."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + (r if isinstance(r, str) else "".join(f"<td>{c}</td>" for c in r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _panel_steps_note(ps) -> str:
    """Which steps the panel scored during the run (the others were not scored: no value, not a zero)."""
    if not isinstance(ps, dict) or not ps.get("steps"):
        return ""
    steps = [str(x) for x in ps["steps"]]
    shown = ", ".join(steps if len(steps) <= 12 else steps[:6] + ["..."] + steps[-3:])
    return (f'<p class="reason">During the run the panel scored {len(steps)} steps (every {_e(ps.get("every"))}, '
            f'and the last): {_e(shown)}; the other steps were not scored.</p>')


def _first_existing(run_dir: Path, names) -> str | None:
    for n in names:
        if n and (run_dir / n).is_file():
            return n
    return None


def _findings(verdict: dict, pg, efiles: dict) -> str:
    """The verdict's three findings side by side, each with its figures."""
    f = verdict["findings"]
    eq, inf, ph = f.get("equivalence"), f.get("informative"), f.get("physical") or {}
    boxes = []
    if eq:
        ci = eq.get("ci")
        boxes.append(
            "<h3>1. Equivalence on unseen views</h3>"
            f'<p class="res">TOST: {_e(eq.get("decision"))} (p = {_num(eq.get("p"), 3)})</p>'
            f"<p>result {_num(eq.get('mean_result'))} vs noise ceiling {_num(eq.get('mean_ceiling'))}; difference "
            f"{_num(eq.get('mean'))}, 90% CI [{_num(ci[0]) if ci else '—'}, {_num(ci[1]) if ci else '—'}], margin "
            f"±{_num(eq.get('margin'))} ({_num(eq.get('margin_fraction'))} × noise distance)</p>"
            f"<p>n = {eq.get('n')}: {_e(eq.get('n_counts'))}; {eq.get('seeds_per_view')} render seeds per view.</p>"
            + pg.figure(efiles.get("equivalence"), "held-out views: result, ceiling, control", 520))
    else:
        boxes.append("<h3>1. Equivalence on unseen views</h3><p>not run (no held-out renders)</p>")
    if inf:
        d = inf.get("control_deficit") or {}
        ci = d.get("ci")
        null_txt = ("no null distribution built (`mrd null`)" if not inf.get("null_built") else
                    f"null 95th percentile {_num(inf.get('null_p95'))}: "
                    f"{'below' if inf.get('null_below_ceiling') else 'not below'} ceiling − margin")
        boxes.append(
            "<h3>2. Informative network</h3>"
            f'<p class="res">{"informative" if inf.get("informative") else "uninformative"}</p>'
            f"<p>10° control below the ceiling by {_num(d.get('mean'))} (90% CI "
            f"[{_num(ci[0]) if ci else '—'}, {_num(ci[1]) if ci else '—'}]; must exceed the margin "
            f"{_num(inf.get('margin'))})</p><p>{_e(null_txt)}</p>")
    else:
        boxes.append("<h3>2. Informative network</h3><p>not tested (no held-out control)</p>")
    if ph.get("measured"):
        within = "within tolerance (a reconstruction)" if ph.get("within_tolerance") else "physically different"
        if ph.get("kind") == "shape":
            body = (f"<p>RMS surface distance {_num(ph.get('rms_distance'))} (tolerance {_num(ph.get('tolerance'))}),"
                    f" normal consistency {_num(ph.get('normal_consistency'))} (at least "
                    f"{_num(ph.get('normal_tolerance'))}); {_e(ph.get('units'))}; one pixel ≈ "
                    f"{_num(ph.get('pixel_footprint'))}</p>")
        else:
            errs = ", ".join(f"{_e(k)} {_num(v)}" for k, v in (ph.get("errors") or {}).items())
            body = f"<p>{errs} (tolerance {_num(ph.get('tolerance'))}; {_e(ph.get('units'))})</p>"
        boxes.append(f'<h3>3. Physical difference</h3><p class="res">{within}</p>{body}')
    else:
        boxes.append("<h3>3. Physical difference</h3><p>not measured</p>")
    rule = (verdict.get("deciding") or {}).get("outcome_rule")
    return ('<div class="findings">' + "".join(f'<div class="finding">{b}</div>' for b in boxes) + "</div>"
            + (f"<p>Outcome <b>{_e(verdict.get('outcome'))}</b>: {_e(rule)}.</p>" if rule else ""))


def build_html(report: dict, run_dir: Path, embed: bool = False) -> str:
    pg = _Page(run_dir, embed)
    ev = report.get("evidence") or {}
    files = report.get("files") or {}
    efiles = ev.get("files") or {}
    verdict = ev.get("verdict") or {}
    research = ev.get("research") or (verdict if "bayes" in verdict else {})  # older reports: research stats only
    status = str(report.get("status", "unknown"))
    model, weights = report.get("model", "?"), report.get("weights", "?")
    shown = f"{model} ({weights})" if weights not in ("none", "", None) else str(model)
    title = f"{report.get('scene', '?')} · {shown} · {report.get('envmap', '?')}"

    if verdict.get("sentence"):
        sentence, outcome = verdict["sentence"], verdict.get("outcome", "undetermined")
    elif status == "failed":
        sentence, outcome = f"The run failed: {report.get('error') or 'no error message'}", "none"
    elif status == "running":
        sentence, outcome = "The run is still going; the evidence is computed at its end.", "none"
    else:
        sentence, outcome = f"No verdict: the run ended as {status} before the evidence was computed.", "none"

    pg.add(f'<h1>{_e(title)}<span class="badge st-{_e(status)}">{_e(status)}</span>'
           f'<span class="badge">{_e(report.get("mode", ""))}</span></h1>')
    pg.add(f'<div class="verdict v-{_e(outcome.replace(" ", "-"))}" id="verdict">{_e(sentence)}</div>')
    if verdict.get("findings"):
        pg.add(_findings(verdict, pg, efiles))

    sim = report.get("similarity") or {}
    ch = report.get("chamfer") or {}
    meas = ev.get("measures") or {}
    null = ev.get("null") or {}

    def mean_of(block, key="model"):
        return ((meas.get(block) or {}).get("mean") or {}).get(key)
    steps = report.get("steps") or []
    pg.add(_kv([
        ("similarity start → end", f"{_num(sim.get('start'))} → {_num(sim.get('end'))}" if sim else None),
        ("result vs control", _num(mean_of("result_vs_control")) if meas.get("result_vs_control") else None),
        ("held-out views", _num(mean_of("heldout_views")) if meas.get("heldout_views") else None),
        ("outcome", _e(verdict.get("outcome")) if verdict.get("findings") else None),
        ("research BF+0", bf_text(research.get("bayes")) if research.get("bayes") else None),
        ("sign-flip p", _num((research.get("sign_flip") or {}).get("p"), 3) if research.get("sign_flip") else None),
        ("null percentile", f"{_num(null.get('percentile'), 3)}%" if null.get("percentile") is not None else None),
        ("chamfer start → end", f"{_num(ch.get('start'))} → {_num(ch.get('end'))}" if ch else None),
        ("logged steps", str(len(steps)) if steps else None),
        ("seconds", _num(report.get("seconds"), 3) if report.get("seconds") is not None else None),
    ]))

    # images -------------------------------------------------------------------------------------------------------
    target_grid = _first_existing(run_dir, [files.get("target_grid") if isinstance(files.get("target_grid"), str)
                                            else None, "renders/target_grid.png"])
    final_grid = _first_existing(run_dir, [files.get("final_grid") if isinstance(files.get("final_grid"), str)
                                           else None, "renders/final_grid.png"])
    imgs = pg.figure(target_grid, "target", cls="grid") + pg.figure(final_grid, "result (final)", cls="grid")
    if imgs:
        pg.add(f'<h2>Target and result</h2><div class="row">{imgs}</div>')
    turn = _first_existing(run_dir, ["renders/turntable.gif", "turntable.gif"])
    turn_t = _first_existing(run_dir, ["renders/turntable_target.gif", "renders/target_turntable.gif"])
    video = files.get("video") if isinstance(files.get("video"), str) else None
    moving = (pg.figure(turn_t, "target turntable", cls="anim") + pg.figure(turn, "result turntable", cls="anim")
              + pg.figure(video, "optimization", cls="anim"))
    if moving:
        pg.add(f'<h2>Turntable</h2><div class="row">{moving}</div>')
    curves = _first_existing(run_dir, [files.get("curves") if isinstance(files.get("curves"), str) else None,
                                       "curves.png"])
    figs = pg.figure(curves, "loss and similarity per step") + pg.figure(efiles.get("scores"),
                                                                          "per-view paired scores")
    if figs:
        pg.add(f'<h2>Curves and per-view scores</h2><div class="row">{figs}</div>')

    # cross-model panel ----------------------------------------------------------------------------------------------
    panel = ev.get("panel")
    if panel:
        rows = []
        for name, e in (panel.get("models") or {}).items():
            rows.append([_e(name), _e(e.get("weights", "")), _num(e.get("mean")), _num(e.get("control_mean")),
                         _num(e.get("heldout_mean"))])
        for name, why in (panel.get("skipped") or {}).items():
            rows.append(f'<td>{_e(name)}</td><td class="reason">skipped</td>'
                        f'<td class="reason" colspan="3">{_e(why)}</td>')
        pg.add("<h2>Cross-model panel</h2>" + _table(
            ["model", "weights", "result vs target", "result vs control", "held-out views"], rows)
            + _panel_steps_note(report.get("panel_steps")))

    # similarity and pixel tables -----------------------------------------------------------------------------------
    if meas:
        names = {"result_vs_target": "result vs target", "result_vs_control": "result vs control",
                 "control_vs_target": "control vs target", "heldout_views": "held-out views (result vs target)"}
        rows = []
        for key, label in names.items():
            m = (meas.get(key) or {}).get("mean")
            if m:
                rows.append([_e(label)] + [_num(m.get(k)) for k in ("model", "cosine", "l2", "pearson", "spearman")])
        pg.add(f"<h2>Similarity under {_e(model)} (mean over views)</h2>" +
               _table(["", "model's own", "cosine", "L2 sim.", "Pearson", "Spearman"], rows))
    pix = ev.get("pixels") or {}
    if pix:
        rows = []
        for key, label in (("result_vs_target", "result vs target"), ("control_vs_target", "control vs target"),
                           ("heldout_views", "held-out views")):
            m = (pix.get(key) or {}).get("mean")
            if m:
                rows.append([_e(label), _num(m.get("flip")), _num(m.get("psnr")), _num(m.get("ssim")),
                             _num(m.get("lpips"))])
        pg.add("<h2>Pixels (mean over views)</h2>" + _table(["", "FLIP ↓", "PSNR dB", "SSIM", "LPIPS sim."], rows))
        flips = pg.figure(efiles.get("flip"), "FLIP error, result vs target") + pg.figure(
            efiles.get("flip_heldout"), "FLIP error, held-out views")
        if flips:
            pg.add(f'<div class="row">{flips}</div>')

    # statistics ---------------------------------------------------------------------------------------------------
    if research.get("bayes"):
        verdict_r = research
        b, rb = research["bayes"], research["rank_bayes"]
        sf, rp = research["sign_flip"], research["rank_permutation"]
        rows = [["paired JZS BF+0", bf_text(b), _e(b.get("label")), f"t = {_num(b.get('t'))}, df = {b.get('df')}"],
                ["rank BF+0", bf_text(rb), _e(rb.get("label")), f"t = {_num(rb.get('t'))}, df = {rb.get('df')}"],
                ["sign-flip permutation", f"p = {_num(sf.get('p'), 3)}", "",
                 f"{sf.get('draws')} draws, {sf.get('method')}"],
                ["rank permutation", f"p = {_num(rp.get('p'), 3)}", "", f"{rp.get('draws')} draws, {rp.get('method')}"]]
        against = _e(verdict_r.get("baseline_label") or verdict_r.get("baseline"))
        pg.add(f"<h2>Research-compatible statistics: result vs target against {against}</h2><p>"
               f"On the optimization views; they do not decide the outcome (docs/evidence.md). "
               f"{_e(verdict_r.get('sentence'))} "
               f"{verdict_r.get('views_above_baseline')} of {verdict_r.get('n')} views above the baseline; mean "
               f"difference {_num(verdict_r.get('mean_difference'))}; Cauchy prior r = {_num(b.get('prior_r'))}.</p>"
               + _table(["test", "value", "Jeffreys' scale", "detail"], rows))

    # RSA ----------------------------------------------------------------------------------------------------------
    rsa = ev.get("rsa") or {}
    if any(rsa.values()):
        rows = []
        for key, label in (("result_vs_target", "result vs target"), ("result_vs_control", "result vs control"),
                           ("heldout_views", "held-out views")):
            r = rsa.get(key)
            if r:
                rows.append([_e(label), _num(r.get("kendall_tau_b")), _num(r.get("kendall_p"), 3),
                             _num(r.get("spearman_rho")), _num(r.get("spearman_p"), 3), str(r.get("n_views"))])
        figs = (pg.figure(efiles.get("rdms"), "RDMs (1 - Pearson r across views)")
                + pg.figure(efiles.get("rsa_scatter"), "RSA scatter")
                + pg.figure(efiles.get("rdms_heldout"), "RDMs, held-out views"))
        pg.add("<h2>Representational similarity across views</h2>" +
               _table(["", "Kendall tau-b", "p", "Spearman rho", "p", "views"], rows)
               + f'<div class="row">{figs}</div>')

    # null ---------------------------------------------------------------------------------------------------------
    if null:
        warn = "".join(f'<p class="broken">{_e(w)}</p>' for w in null.get("warnings") or [])
        pg.add(f"<h2>Null distribution</h2><p>The result's similarity {_num(null.get('value'))} is above "
               f"{_num(null.get('percentile'), 3)}% of {null.get('n')} other objects (95th percentile "
               f"{_num(null.get('p95'))}; the target re-rendered: {_num(null.get('target_resample'))}).</p>{warn}"
               + pg.figure(efiles.get("null"), "null distribution, this run marked", 640))

    geo = ev.get("geometry")
    if geo:
        pg.add("<h2>Geometry</h2>" + _table(["", "chamfer", "normal consistency"], [
            ["result vs target", _num(geo["result"]["chamfer"]), _num(geo["result"]["normal_consistency"])],
            [f"control ({_num(ev.get('control_degrees'))}°) vs target", _num(geo["control"]["chamfer"]),
             _num(geo["control"]["normal_consistency"])]]))
    notes = list(ev.get("notes") or [])
    if report.get("error") and status != "failed":
        notes.append(f"error: {report['error']}")
    if notes:
        pg.add("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
    cfg = {k: report.get(k) for k in ("config", "objective", "integrator", "versions", "variant", "preprocess")}
    pg.add("<h2>Settings</h2><details><summary>configuration, objective, integrator, versions</summary><pre>"
           + _e(json.dumps(cfg, indent=1, default=str)) + "</pre></details>")

    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{CSS}</style><script>{CHECK_JS}</script></head>"
            f"<body><main>{''.join(pg.parts)}</main></body></html>\n")


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
