"""The verdict: three findings and one outcome (docs/evidence.md explains each for a vision scientist).

1. Equivalence on unseen views: on a held-out rig, the per-view difference between the result's similarity to the
   target and the noise ceiling (the similarity of independent re-renders of the target to it), tested for
   equivalence within a margin by TOST (two one-sided t tests, alpha 0.05, i.e. the 90 % interval inside +-margin).
   The margin is a fraction (default 0.5) of the noise distance 1 - ceiling: the result's distance from the target
   may exceed that of an independent re-render by at most half of it.
2. An informative network: the rotated control (and the null distribution of other objects, when one was built)
   falls clearly below the ceiling: the one-sided 95 % lower bound of the control's deficit is beyond the margin
   (the control would fail the equivalence test), and the null's 95th percentile is below ceiling - margin.
3. Physical difference: shape (RMS surface distance from the chamfer, in units of the target's bounding-box
   diagonal, and normal consistency) or material (texel RMSE on visible texels, scalar errors) against a tolerance.

Outcome, in this order: physically within tolerance -> reconstruction; the result clearly below the ceiling ->
not_metamer (a network that tells result and target apart answers the question, informative or not); the network
cannot tell the controls from the target -> uninformative; equivalent and physically different -> metamer;
anything else -> inconclusive.
"""
from __future__ import annotations

import math

import numpy as np

OUTCOMES = ("metamer", "reconstruction", "not_metamer", "inconclusive", "uninformative")
ALPHA = 0.05
DEFAULT_MARGIN = 0.5          # fraction of the noise distance 1 - ceiling
SHAPE_TOLERANCE = 0.01        # RMS surface distance, fraction of the target's bounding-box diagonal
NORMAL_TOLERANCE = 0.95       # normal consistency at least this
MATERIAL_TOLERANCE = 0.02     # texel RMSE / scalar error in the parameter's own units (values in [0, 1])


def _t():
    from scipy.stats import t
    return t


def _clean(x) -> np.ndarray:
    a = np.asarray([np.nan if v is None else float(v) for v in x], np.float64)
    return a


def mean_interval(d, level: float = 1 - 2 * ALPHA) -> dict:
    """Mean, standard deviation, n and the two-sided `level` t interval of per-unit values d."""
    d = _clean(d)
    d = d[np.isfinite(d)]
    n = int(len(d))
    if n == 0:
        return {"n": 0, "mean": None, "sd": None, "ci": None}
    m = float(d.mean())
    if n < 2:
        return {"n": n, "mean": m, "sd": None, "ci": None}
    sd = float(d.std(ddof=1))
    half = float(_t().ppf(1 - (1 - level) / 2, n - 1) * sd / math.sqrt(n))
    return {"n": n, "mean": m, "sd": sd, "ci": [m - half, m + half]}


def tost(d, margin: float, alpha: float = ALPHA) -> dict:
    """Two one-sided t tests of mean(d) inside (-margin, +margin). `decision`: equivalent (both p < alpha: the
    (1 - 2 alpha) interval lies inside the margin), different_below / different_above (the interval lies wholly
    outside it), or undecided."""
    s = mean_interval(d, 1 - 2 * alpha)
    out = {**s, "margin": float(margin), "alpha": alpha, "p_lower": None, "p_upper": None, "p": None,
           "decision": "undecided"}
    if s["ci"] is None:
        return out
    n, m, sd = s["n"], s["mean"], s["sd"]
    lo, hi = s["ci"]
    if sd > 0:
        se = sd / math.sqrt(n)
        T = _t()
        out["p_lower"] = float(T.sf((m + margin) / se, n - 1))   # H0: mean <= -margin
        out["p_upper"] = float(T.cdf((m - margin) / se, n - 1))  # H0: mean >= +margin
    else:  # no spread: the mean is the interval
        out["p_lower"] = 0.0 if m > -margin else 1.0
        out["p_upper"] = 0.0 if m < margin else 1.0
    out["p"] = max(out["p_lower"], out["p_upper"])
    if out["p"] < alpha:
        out["decision"] = "equivalent"
    elif hi < -margin:
        out["decision"] = "different_below"
    elif lo > margin:
        out["decision"] = "different_above"
    return out


def equivalence_finding(result, ceiling, control, margin_fraction: float = DEFAULT_MARGIN, seeds: int = 1,
                        alpha: float = ALPHA) -> dict:
    """Finding 1 from per-view (seed-averaged) similarities to the held-out target reference: result, ceiling
    (independent re-renders of the target) and control (the rotated target, shown, not used by the test)."""
    r, c, k = _clean(result), _clean(ceiling), _clean(control)
    noise = _nanmean(1.0 - c)
    margin = max(0.0, margin_fraction * noise) if noise is not None else 0.0
    gap = _nanmean(c - k)
    test = tost(r - c, margin, alpha)
    return {"views": int(len(r)), "seeds_per_view": int(seeds), "result": _list(r), "ceiling": _list(c),
            "control": _list(k), "differences": _list(r - c), "mean_result": _nanmean(r),
            "mean_ceiling": _nanmean(c), "mean_control": _nanmean(k), "control_gap": gap, "noise_distance": noise,
            "margin_fraction": float(margin_fraction), "margin": margin, "test": "TOST", **test,
            "n_counts": "held-out views of this run (each the mean over its render seeds); views of one run are "
                        "not independent draws, so this n bounds what one run can show"}


def informative_finding(ceiling, control, margin: float, null: dict | None = None, alpha: float = ALPHA) -> dict:
    """Finding 2: the control's per-view deficit from the ceiling is beyond the margin with one-sided 1 - alpha
    confidence (the control would fail the equivalence test); a null distribution (if any) has its 95th
    percentile below ceiling - margin."""
    deficit = _clean(ceiling) - _clean(control)
    s = mean_interval(deficit, 1 - 2 * alpha)   # lower end of the two-sided 90 % = one-sided 95 % bound
    control_ok = s["ci"] is not None and s["ci"][0] > margin
    ceiling_mean = _nanmean(_clean(ceiling))
    null_ok, null_p95 = None, None
    if null and null.get("p95") is not None and ceiling_mean is not None:
        null_p95 = float(null["p95"])
        null_ok = null_p95 < ceiling_mean - margin
    return {"informative": bool(control_ok and null_ok is not False), "control_deficit": s, "margin": margin,
            "control_below_ceiling": bool(control_ok), "null_p95": null_p95, "null_below_ceiling": null_ok,
            "null_built": null is not None}


def shape_finding(geometry: dict | None, pixel_footprint: float | None = None) -> dict:
    """Finding 3 for shapes: `geometry` is meshes.chamfer(result, target) (bounding-box-diagonal units)."""
    if not geometry or geometry.get("chamfer") is None:
        return {"kind": "shape", "measured": False, "within_tolerance": None}
    rms = math.sqrt(max(0.0, float(geometry["chamfer"])) / 2)
    nc = geometry.get("normal_consistency")
    within = rms <= SHAPE_TOLERANCE and (nc is None or nc >= NORMAL_TOLERANCE)
    return {"kind": "shape", "measured": True, "chamfer": float(geometry["chamfer"]), "rms_distance": rms,
            "normal_consistency": nc, "tolerance": SHAPE_TOLERANCE, "normal_tolerance": NORMAL_TOLERANCE,
            "pixel_footprint": pixel_footprint, "within_tolerance": bool(within),
            "units": "fraction of the target's bounding-box diagonal"}


def material_finding(material: dict | None) -> dict:
    """Finding 3 for materials: visible-texel RMSE per texture and the scalar errors (report['material'])."""
    if not material:
        return {"kind": "material", "measured": False, "within_tolerance": None}
    errors = {}
    for name, t in (material.get("texture_rmse") or {}).items():
        v = t.get("end_visible", t.get("end"))
        if v is not None:
            errors[name] = float(v)
    for name, e in (material.get("parameter_error") or {}).items():
        if e.get("error_end") is not None:
            errors[name] = float(e["error_end"])
    if not errors:
        return {"kind": "material", "measured": False, "within_tolerance": None}
    worst = max(errors.values())
    return {"kind": "material", "measured": True, "errors": errors, "max_error": worst,
            "tolerance": MATERIAL_TOLERANCE, "within_tolerance": bool(worst <= MATERIAL_TOLERANCE),
            "units": "texel RMSE on texels some view sees, and absolute scalar error, in parameter units"}


def decide(eq: dict | None, inf: dict | None, phys: dict) -> tuple[str, str]:
    """(outcome, reason) from the three findings, in the order of the module docstring."""
    if phys.get("within_tolerance"):
        return "reconstruction", "physically within tolerance of the target"
    if eq is None or eq.get("decision") is None:
        return "inconclusive", "the equivalence test on held-out views was not run"
    if eq["decision"] == "different_below":
        return "not_metamer", "clearly below the noise ceiling on held-out views"
    if inf is not None and not inf["informative"]:
        return "uninformative", "the network does not tell the controls from the target"
    if eq["decision"] == "equivalent":
        if phys.get("within_tolerance") is False:
            return "metamer", "equivalent to the noise ceiling on held-out views, and physically different"
        return "inconclusive", "equivalent on held-out views, but the physical difference was not measured"
    if eq["decision"] == "different_above":
        return "inconclusive", "above the noise ceiling by more than the margin (check the render noise)"
    return "inconclusive", "neither equivalent nor clearly different within the margin"


HEADS = {"metamer": "Model metamer", "reconstruction": "Reconstruction, not a metamer",
         "not_metamer": "Not a metamer", "inconclusive": "Inconclusive", "uninformative": "Uninformative network"}


def sentence(outcome: str, reason: str, who: str, eq: dict | None, inf: dict | None, phys: dict,
             extra: str = "") -> str:
    parts = [f"{HEADS[outcome]} under {who}: {reason}"]
    if eq is not None and eq.get("mean_result") is not None:
        ci = eq.get("ci")
        ci_text = f", 90% CI [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else ""
        parts.append(f"held-out similarity {eq['mean_result']:.4f} vs ceiling {eq['mean_ceiling']:.4f} "
                     f"(difference {eq['mean']:.3g}{ci_text}; margin +-{eq['margin']:.3g}; n = {eq['n']} views x "
                     f"{eq['seeds_per_view']} seeds)")
    if inf is not None and inf.get("control_deficit", {}).get("mean") is not None:
        parts.append(f"10-degree control {inf['control_deficit']['mean']:.3g} below the ceiling")
    if phys.get("measured"):
        if phys["kind"] == "shape":
            parts.append(f"RMS surface distance {phys['rms_distance']:.3g} of the bounding-box diagonal "
                         f"(tolerance {phys['tolerance']:g})")
        else:
            parts.append(f"largest material error {phys['max_error']:.3g} (tolerance {phys['tolerance']:g})")
    s = "; ".join(parts[:1] + ["; ".join(parts[1:])] if len(parts) > 1 else parts)
    return s + (f". {extra}" if extra else ".")


def _nanmean(a) -> float | None:
    a = np.asarray(a, np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if len(a) else None


def _list(a) -> list:
    return [None if not math.isfinite(float(x)) else float(x) for x in np.asarray(a, np.float64)]


MIN_REPLICATES_FOR_BETWEEN_RUN_TEST = 3


def pool(verdicts: list[dict], alpha: float = ALPHA) -> dict:
    """Pools the verdicts of N replicate runs (same configuration, other seeds and start perturbations).

    With N >= 3 the unit is the replicate: the TOST runs on the N per-run mean differences from the ceiling (the
    margin is the mean of the runs' margins), n = N runs. With fewer, it runs on the held-out views of all runs
    together and says that those are not independent draws. The network is informative when it is in every run;
    physically within tolerance when every run is, different when every run is, otherwise not settled."""
    per = []
    for v in verdicts:
        f = (v or {}).get("findings") or {}
        eq, inf, ph = f.get("equivalence"), f.get("informative"), f.get("physical") or {}
        per.append({"outcome": (v or {}).get("outcome"), "difference": eq.get("mean") if eq else None,
                    "margin": eq.get("margin") if eq else None, "informative": inf.get("informative") if inf else None,
                    "within_tolerance": ph.get("within_tolerance"), "eq": eq, "kind": ph.get("kind", "shape")})
    eqs = [p["eq"] for p in per if p["eq"] is not None]
    eq = None
    if eqs:
        margin = float(np.mean([e["margin"] for e in eqs]))
        if len(eqs) >= MIN_REPLICATES_FOR_BETWEEN_RUN_TEST:
            d = [e["mean"] for e in eqs]
            unit = f"replicate runs (each the mean over its {eqs[0]['views']} held-out views)"
        else:
            d = [x for e in eqs for x in e["differences"] if x is not None]
            unit = (f"held-out views of {len(eqs)} runs pooled; views are not independent draws (use "
                    f"--replicates {MIN_REPLICATES_FOR_BETWEEN_RUN_TEST} or more for a test across runs)")
        eq = {**tost(d, margin, alpha), "n_counts": unit, "test": "TOST",
              "mean_result": _nanmean([e["mean_result"] for e in eqs]),
              "mean_ceiling": _nanmean([e["mean_ceiling"] for e in eqs]), "seeds_per_view": eqs[0]["seeds_per_view"]}
    infs = [p["informative"] for p in per if p["informative"] is not None]
    inf = {"informative": bool(infs) and all(infs), "control_deficit": {}} if infs else None
    within = [p["within_tolerance"] for p in per if p["within_tolerance"] is not None]
    phys = {"kind": per[0]["kind"] if per else "shape", "measured": False,
            "within_tolerance": (True if within and all(within) else False if within and not any(within) else None)}
    outcome, reason = decide(eq, inf, phys)
    if phys["within_tolerance"] is None and within:
        reason += " (the replicates disagree on the physical difference)"
    return {"outcome": outcome, "reason": reason, "n": len(verdicts), "equivalence": eq, "informative": inf,
            "physical_within_tolerance": phys["within_tolerance"],
            "per_replicate": [{k: p[k] for k in ("outcome", "difference", "margin", "informative",
                                                 "within_tolerance")} for p in per]}
