"""The verdict of a run's evidence, from its measures: the metamer verdict (three findings -- equivalence to the
noise ceiling on held-out views, an informative network, the physical difference -- and one outcome; metamer.py
holds the findings' statistics) and the research code's statistics (paired per-view scores on the optimization views
against a baseline, default result vs control: BF+0, rank BF+0, sign-flip and rank permutation tests, Jeffreys
labels), kept unchanged under `evidence.research`, which no longer decide. Also their two figures. The measures
themselves are gathered by end_of_run.py.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..outputs.figures import save_figure
from . import metamer
from .stats import bf_text

SUPPORT_BF = 3.0   # BF+0 above: supported; below 1/3: not supported; between: inconclusive


def research_outcome(b: dict) -> str:
    """The research statistics' outcome: supported when BF+0 > 3, not supported below 1/3, else inconclusive."""
    lg = b.get("log10_bf_plus0")
    if lg is None:
        return "undetermined"
    if lg > math.log10(SUPPORT_BF):
        return "supported"
    if lg < -math.log10(SUPPORT_BF):
        return "not supported"
    return "inconclusive"


def research_sentence(model: str, weights: str, v: dict, baseline_text: str, null_pct: float | None) -> str:
    b, rb, sf = v["bayes"], v["rank_bayes"], v["sign_flip"]
    head = {"supported": "Metamer supported", "not supported": "Metamer not supported",
            "inconclusive": "Inconclusive", "undetermined": "Undetermined"}[v["outcome"]]
    who = f"{model} ({weights})" if weights not in ("none", "") else model
    s = (f"{head} under {who}: the result is more similar to the target than {baseline_text} in "
         f"{v['views_above_baseline']} of {v['n']} views (BF+0 = {bf_text(b, 'undefined')}, {b['label']}; "
         f"rank BF+0 = {bf_text(rb, 'undefined')}; sign-flip p = {sf['p']:.2g})")
    if null_pct is not None:
        s += f", and more similar than {null_pct:.0f}% of other objects"
    return s + "."


def scores_plot(v: dict, path: Path, baseline_name: str) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    x = np.arange(v["n"])
    fig, (a, b) = plt.subplots(1, 2, figsize=(8.4, 2.9), layout="constrained")
    a.plot(x, v["scores"], "o-", ms=3, color="C0", label="result vs target")
    a.plot(x, v["baseline_scores"], "s--", ms=3, color="C1", label=baseline_name)
    a.set(xlabel="view", ylabel="similarity", title="per-view paired scores")
    a.legend(fontsize=7)
    d = np.asarray(v["differences"])
    b.bar(x, d, color=np.where(d > 0, "C2", "C3"))
    b.axhline(0, color="0.4", lw=0.8)
    b.set(xlabel="view", ylabel="difference", title=f"differences (mean {d.mean():.3g})")
    for ax in (a, b):
        ax.title.set_fontsize(10)
    return save_figure(fig, path)


def metamer_verdict(ip, held, who: str, geometry, null_out, notes: list) -> dict:
    """report["evidence"]["verdict"]: the three findings and the outcome. `held` is (result, ceiling, control), the
    per-view seed means on the held-out views (control None when no control was rendered), or None without them."""
    eq = inf = None
    if held is not None:
        result, ceiling, control = held
        if control is None:
            control = [np.nan] * len(result)
            notes.append("no held-out control renders: the network cannot be shown informative")
        eq = metamer.equivalence_finding(result, ceiling, control, ip.margin, len(ip.heldout_target_repeats))
        eq["reference_seeds"] = 1
        inf = metamer.informative_finding(ceiling, control, eq["margin"], null_out)
    if ip.material is not None:
        phys = metamer.material_finding(ip.material)
    else:
        phys = metamer.shape_finding(geometry["result"] if geometry else None, ip.pixel_footprint)
    outcome, reason = metamer.decide(eq, inf, phys)
    extra = ""
    if ip.skipped:
        extra = "Left out (run cancelled): " + ", ".join(ip.skipped) + "."
    elif eq is None:
        extra = "No held-out renders were given."
    deciding = {"outcome_rule": reason}
    if eq is not None:
        deciding.update(heldout_similarity=eq["mean_result"], ceiling=eq["mean_ceiling"],
                        control=eq["mean_control"], difference=eq["mean"], ci90=eq["ci"], margin=eq["margin"],
                        tost_p=eq["p"], n=eq["n"], n_counts=eq["n_counts"])
    if phys.get("measured"):
        deciding.update({k: phys[k] for k in ("rms_distance", "normal_consistency", "max_error", "tolerance")
                         if k in phys})
    return {"outcome": outcome, "sentence": metamer.sentence(outcome, reason, who, eq, inf, phys, extra),
            "deciding": deciding, "findings": {"equivalence": eq, "informative": inf, "physical": phys}}


def equivalence_plot(eq: dict, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    x = np.arange(eq["views"])
    f = lambda k: np.array([np.nan if v is None else v for v in eq[k]], np.float64)  # noqa: E731
    fig, (a, b) = plt.subplots(1, 2, figsize=(8.4, 2.9), layout="constrained")
    a.plot(x, f("ceiling"), "o-", ms=3, color="C2", label="ceiling: target re-rendered")
    a.plot(x, f("result"), "o-", ms=3, color="C0", label="result")
    a.plot(x, f("control"), "s--", ms=3, color="C1", label="control (10 deg)")
    a.set(xlabel="held-out view", ylabel="similarity to the target", title="held-out views (seed means)")
    a.legend(fontsize=7)
    d = f("differences")
    b.bar(x, d, color="C0")
    m = eq["margin"]
    b.axhspan(-m, m, color="C2", alpha=0.15, label=f"margin +-{m:.3g}")
    if eq.get("ci"):
        b.axhline(eq["ci"][0], color="k", lw=0.8, ls=":")
        b.axhline(eq["ci"][1], color="k", lw=0.8, ls=":", label="90% CI of the mean")
    b.axhline(0, color="0.4", lw=0.8)
    b.set(xlabel="held-out view", ylabel="result - ceiling", title=f"TOST: {eq['decision']}")
    b.legend(fontsize=7)
    for ax in (a, b):
        ax.title.set_fontsize(10)
    return save_figure(fig, path)
