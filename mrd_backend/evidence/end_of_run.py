"""End-of-run evidence: is the result a metamer of the target, and how sure are we?

`end_of_run(EvidenceInputs(...))` computes, under the optimized model, the per-view similarity of the result to the
target, to the held-out control (the target rotated 10 degrees about +Z, same cameras) and, on the held-out camera
rig, of the held-out result renders to the held-out target renders; pixel measures (FLIP, PSNR, SSIM, LPIPS); mesh
distances; the cross-model panel; RSA across views; the null-distribution percentile.

The verdict (verdict.py, metamer.py) has three findings -- equivalence to the noise ceiling on held-out
views, an informative network, the physical difference -- and one outcome. The research code's statistics (paired
per-view scores on the optimization views against a baseline, default result vs control: BF+0, rank BF+0, sign-flip
and rank permutation tests, Jeffreys labels) are kept, unchanged, under `evidence.research`; they no longer decide.
PNGs go to RUN_DIR/evidence/.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import MRDError
from ..peak_memory import release as release_memory
from . import metamer, stats
from . import pixels as px
from . import rsa as rsa_mod
from .panel import DEFAULT_MODELS, Panel, end_of_run_panel, panel_weights
from .scoring import Scorer, masked, seed_mean
from .similarity import to_numpy
from .verdict import equivalence_plot, metamer_verdict, research_outcome, research_sentence, scores_plot

EVIDENCE_VERSION = 1
BASELINES = ("control", "control_to_target", "scores")


@dataclass
class EvidenceInputs:
    """What the run hands over at its end. Images are tone-mapped sRGB (H, W, 3) in [0, 1] (numpy or Dr.Jit),
    one per view; the lists of one rig have the same length and order."""
    objective: object                                   # the run's built objective
    target_images: list                                 # optimization rig: the targets
    result_images: list                                 # optimization rig: the final renders
    control_images: list | None = None                  # optimization rig: the target rotated 10 deg about +Z
    heldout_target_images: list | None = None           # held-out rig (never optimized on): targets
    heldout_result_images: list | None = None           # held-out rig: final renders
    masks: list | None = None                           # optimization rig: per-view bool (H, W) object masks
    heldout_masks: list | None = None                   # held-out rig: per-view bool (H, W) object masks
    target_mesh: tuple | None = None                    # (V (n,3), F (m,3)) or None (material runs)
    result_mesh: tuple | None = None
    null: object | None = None                          # a NullDistribution (evidence.null.load_null) or None
    run_dir: Path | None = None                         # PNGs go to run_dir/evidence/
    panel_models: list = field(default_factory=lambda: list(DEFAULT_MODELS))
    panel_weights: str | None = None                    # None: the run's weights (pretrained/untrained)
    weights_dir: str | None = None
    preprocess: str = "correct"
    panel: Panel | None = None                          # a panel already built by the loop (reused, targets kept)
    baseline: str = "control"                           # control | control_to_target | scores
    baseline_scores: list | None = None                 # per-view scores for baseline="scores"
    baseline_label: str | None = None                   # e.g. "the mae run of this scene"
    target_features: list | None = None                 # the run's prepared target features (reused if given)
    scene: str | None = None                            # checked against the null distribution
    envmap: str | None = None
    control_degrees: float = 10.0
    draws: int = stats.DRAWS
    seed: int = 0
    prior_r: float = stats.PRIOR_R
    lpips: bool = True                                  # LPIPS per view (via the zoo's lpips objective)
    log: object = print
    # The equivalence test (metamer.py): per render seed, one list of held-out views each, all seeds distinct.
    heldout_target_repeats: list | None = None          # independent re-renders of the held-out target (ceiling)
    heldout_result_repeats: list | None = None          # renders of the result (heldout_result_images if None)
    heldout_control_repeats: list | None = None         # renders of the rotated control
    margin: float = metamer.DEFAULT_MARGIN              # fraction of the noise distance 1 - ceiling
    material: dict | None = None                        # report["material"] of a material run (texel RMSE)
    pixel_footprint: float | None = None                # one pixel at the object, in bounding-box diagonals
    skipped: list = field(default_factory=list)         # parts left out (a cancelled run), said in the report
    quick: bool = False                                 # cancelled: no panel, no LPIPS, no RSA plots
    panel_controls: bool = False                        # the panel also against the control and held-out views


def _rsa_block(feats_a, feats_b) -> dict | None:
    if feats_a is None or feats_b is None or any(f is None for f in feats_a) or any(f is None for f in feats_b):
        return None
    if len(feats_a) < 2:
        return None
    return rsa_mod.compare_rdms(rsa_mod.rdm(feats_a), rsa_mod.rdm(feats_b))


def end_of_run(inputs: EvidenceInputs) -> dict:
    """All the evidence of one finished run, as the dict the report stores under "evidence" (schema: the
    `evidence` definition of mrd_backend/data/report.schema.json). Writes PNGs into inputs.run_dir/evidence/."""
    import drjit as dr
    with dr.suspend_grad():  # no AD graph for the network passes: about twice as fast on a CPU
        return _end_of_run(inputs)


def _end_of_run(inputs: EvidenceInputs) -> dict:
    e = _EndOfRun(inputs)
    for part in ("features", "pixels", "geometry", "panel", "rsa", "null", "research", "verdict"):
        e.tick(part)  # seconds per part: the previous part ends where the next one starts
        getattr(e, part)()
    e.tick("done")
    return e.evidence()


class _EndOfRun:
    """The end-of-run evidence, one method per section of report["evidence"], in the order they run: each reads
    what the sections before it left on `self` (features, scorer, measures, ...)."""

    def __init__(self, ip: EvidenceInputs):
        self.t0 = time.time()
        self.ip = ip
        self.log = ip.log or (lambda *a, **k: None)
        self.obj = ip.objective
        self.n = n = len(ip.target_images)
        if n == 0 or len(ip.result_images) != n:
            raise MRDError(f"evidence needs one result image per target view, got {len(ip.result_images)} for {n}")
        if ip.control_images is not None and len(ip.control_images) != n:
            raise MRDError(f"{len(ip.control_images)} control images for {n} views: render the control from every "
                           "camera")
        if (ip.heldout_target_images is None) != (ip.heldout_result_images is None):
            raise MRDError("held-out views need both target and result renders (or neither)")
        if ip.baseline not in BASELINES:
            raise MRDError(f"unknown baseline {ip.baseline!r}: use one of {', '.join(BASELINES)}")
        self.model = getattr(self.obj, "name", "objective")
        self.weights = str(getattr(self.obj, "weights_used", "none"))
        self.notes: list[str] = []
        self.files: dict[str, str] = {}
        self.edir = Path(ip.run_dir) / "evidence" if ip.run_dir is not None else None
        if self.edir is not None:
            self.edir.mkdir(parents=True, exist_ok=True)
        self.timings: dict[str, float] = {}
        self._clock = [time.perf_counter(), None]

    def rel(self, p: Path) -> str:
        return str(Path(p).relative_to(self.ip.run_dir)).replace("\\", "/")

    def tick(self, part: str) -> None:
        now = time.perf_counter()
        if self._clock[1] is not None:
            self.timings[self._clock[1]] = self.timings.get(self._clock[1], 0.0) + now - self._clock[0]
        self._clock[0], self._clock[1] = now, part

    def features(self) -> None:
        """Features under the optimized model (masked when masks are given) and the model's similarity measures."""
        ip, n = self.ip, self.n
        self.tgt = tgt = masked(ip.target_images, ip.masks)
        self.res = res = masked(ip.result_images, ip.masks)
        self.ctl = ctl = masked(ip.control_images, ip.masks)
        self.ho_t = ho_t = masked(ip.heldout_target_images, ip.heldout_masks)
        self.ho_r = ho_r = masked(ip.heldout_result_images, ip.heldout_masks)
        self.scorer = scorer = Scorer(self.obj)
        if ip.target_features is not None and ip.masks is None:
            if len(ip.target_features) != n:
                raise MRDError(f"{len(ip.target_features)} prepared target features for {n} views")
            t_feats = list(ip.target_features)
        else:
            t_feats = scorer.prepare(tgt)
        measures: dict = {"result_vs_target": None, "result_vs_control": None, "control_vs_target": None,
                          "heldout_views": None}
        measures["result_vs_target"], r_feats = scorer.score(res, t_feats)
        c_feats = None
        if ctl is not None:
            c_feats = scorer.prepare(ctl)
            measures["result_vs_control"], _ = scorer.score(res, c_feats)
            if ip.baseline == "control_to_target":  # a network pass per view: only for the baseline that needs it
                measures["control_vs_target"], _ = scorer.score(ctl, t_feats)
        hr_feats = ht_feats = None
        if ho_t is not None:
            ht_feats = scorer.prepare(ho_t)
            measures["heldout_views"], hr_feats = scorer.score(ho_r, ht_feats)
        self.measures = measures
        self.t_feats, self.r_feats, self.c_feats, self.hr_feats, self.ht_feats = (t_feats, r_feats, c_feats,
                                                                                 hr_feats, ht_feats)

    def _lpips(self):
        """The LPIPS network for the pixel measures: the run's own, the loop panel's, or one built here (None when
        LPIPS is off, the run was cancelled, or the panel weights are untrained)."""
        ip, model = self.ip, self.model
        if not ip.lpips or ip.quick:
            return None
        if model == "lpips":
            return self.obj
        if ip.panel is not None and "lpips" in ip.panel.objectives:
            return ip.panel.objectives["lpips"]
        if (ip.panel_weights or panel_weights(self.weights)) == "untrained":
            # a randomly initialized LPIPS is no perceptual distance, and building it costs seconds
            self.notes.append("LPIPS not computed: the panel weights are untrained (an untrained LPIPS measures "
                              "nothing)")
            return None
        try:
            from .panel import build_model
            return build_model("lpips", ip.panel_weights or panel_weights(self.weights), ip.weights_dir,
                               ip.preprocess, log=lambda *a, **k: None)
        except Exception as exc:
            self.notes.append(f"LPIPS not computed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            return None

    def pixels(self) -> None:
        """Pixel measures (unmasked) and the FLIP maps."""
        ip, edir = self.ip, self.edir
        lpips_obj = self._lpips()
        pixels: dict = {"result_vs_target": None, "control_vs_target": None, "heldout_views": None}
        pixels["result_vs_target"], maps = px.pixel_metrics(ip.result_images, ip.target_images, lpips_obj)
        if ip.control_images is not None:
            # LPIPS on the result only: on the control and held-out views it would cost a network pass per view
            pixels["control_vs_target"], _ = px.pixel_metrics(ip.control_images, ip.target_images, None)
        ho_maps = None
        if ip.heldout_target_images is not None:
            pixels["heldout_views"], ho_maps = px.pixel_metrics(ip.heldout_result_images, ip.heldout_target_images,
                                                                None)
        if edir is not None:
            self.files["flip"] = self.rel(px.flip_grid_png(maps, edir / "flip.png",
                                                           means=pixels["result_vs_target"]["per_view"]["flip"]))
            if ho_maps is not None:
                self.files["flip_heldout"] = self.rel(px.flip_grid_png(
                    ho_maps, edir / "flip_heldout.png", means=pixels["heldout_views"]["per_view"]["flip"]))
        self.pixel_measures = pixels
        # an LPIPS built for the pixel measures only is released before the panel's networks are built; one
        # borrowed from the loop's panel is dropped here too, so that the panel can release it after scoring with it
        built_lpips = lpips_obj is not None and lpips_obj is not self.obj and (ip.panel is None or
                                                                                "lpips" not in ip.panel.objectives)
        lpips_obj = None
        if built_lpips:
            release_memory()

    def geometry(self) -> None:
        """Chamfer distances of the result and of the rotated control to the target mesh (shape runs)."""
        ip = self.ip
        self.geometry_out = None
        if ip.target_mesh is not None and ip.result_mesh is not None:
            from ..scene.meshes import chamfer
            from .heldout import rotate_about_up
            tv, tf = ip.target_mesh
            self.geometry_out = {"result": chamfer(ip.result_mesh[0], ip.result_mesh[1], tv, tf),
                                 "control": chamfer(rotate_about_up(tv, ip.control_degrees), tf, tv, tf)}

    def panel(self) -> None:
        """The cross-model panel: one network at a time, each released before the next (peak memory)."""
        ip = self.ip
        self.panel_out = None
        if not ip.quick and (ip.panel is not None or ip.panel_models):
            self.panel_out = end_of_run_panel(ip, self.weights, self.model, self.obj, self.tgt, self.res,
                                                  self.ctl, self.ho_r, self.ho_t, self.log)

    def rsa(self) -> None:
        """RSA across views: the result's and the target's dissimilarity matrices compared, and their figures."""
        n, edir, rel = self.n, self.edir, self.rel
        r_feats, c_feats, hr_feats, ht_feats = self.r_feats, self.c_feats, self.hr_feats, self.ht_feats
        rsa_out = {"result_vs_target": None, "result_vs_control": None, "heldout_views": None}
        t_np = [to_numpy(f) for f in self.t_feats]
        if all(f is not None for f in r_feats) and n >= 2:
            rsa_out["result_vs_target"] = _rsa_block(r_feats, t_np)
            if c_feats is not None:
                rsa_out["result_vs_control"] = _rsa_block(r_feats, [to_numpy(f) for f in c_feats])
            if hr_feats is not None:
                rsa_out["heldout_views"] = _rsa_block(hr_feats, [to_numpy(f) for f in ht_feats])
            if edir is not None:
                rdms = {"target": rsa_mod.rdm(t_np), "result": rsa_mod.rdm(r_feats)}
                if c_feats is not None:
                    rdms["control"] = rsa_mod.rdm([to_numpy(f) for f in c_feats])
                self.files["rdms"] = rel(rsa_mod.plot_rdms(rdms, edir / "rdms.png"))
                self.files["rsa_scatter"] = rel(rsa_mod.plot_scatter(
                    rdms["target"], rdms["result"], edir / "rsa_scatter.png", rsa_out["result_vs_target"]))
                if hr_feats is not None and len(hr_feats) >= 2:
                    self.files["rdms_heldout"] = rel(rsa_mod.plot_rdms(
                        {"held-out target": rsa_mod.rdm([to_numpy(f) for f in ht_feats]),
                         "held-out result": rsa_mod.rdm(hr_feats)}, edir / "rdms_heldout.png"))
                (edir / "rdms.json").write_text(json.dumps({k: np.asarray(m).tolist() for k, m in rdms.items()}))
                self.files["rdms_json"] = rel(edir / "rdms.json")
        else:
            self.notes.append(f"RSA not computed: {self.model} keeps no per-view features" if n >= 2 else
                              "RSA not computed: it needs at least 2 views")
        self.rsa_out = rsa_out

    def null(self) -> None:
        """Where the result's similarity falls in the null distribution of other objects (when one is given)."""
        ip = self.ip
        value = self.measures["result_vs_target"]["mean"]["model"]
        self.null_out = None
        if ip.null is not None:
            dist = ip.null
            dist.check(ip.scene, ip.envmap, self.model, self.weights, ip.preprocess)
            warn = dist.warnings(views=self.n, width=px.as_image(ip.target_images[0]).shape[1])
            pct = dist.percentile(value) if value is not None else None
            self.null_out = {**dist.summary(), "value": value, "percentile": pct, "scene": dist.scene,
                             "envmap": dist.envmap, "model": dist.model, "weights": dist.weights, "warnings": warn}
            self.notes.extend(f"null distribution: {w}" for w in warn)
            if self.edir is not None:
                from .null import plot_null
                self.files["null"] = self.rel(plot_null(dist, self.edir / "null.png", mark=value))

    def _baseline(self) -> tuple[list | None, str, str]:
        """The baseline's per-view scores, its words in the sentence, and its name in figures."""
        ip, measures = self.ip, self.measures
        deg = f"{ip.control_degrees:g}"
        if ip.baseline == "control" and measures["result_vs_control"] is not None:
            return (measures["result_vs_control"]["per_view"]["model"], f"to the {deg}-degree-rotated control",
                    f"result vs control ({deg} deg)")
        if ip.baseline == "control_to_target" and measures["control_vs_target"] is not None:
            return (measures["control_vs_target"]["per_view"]["model"], f"the {deg}-degree-rotated target is",
                    f"control ({deg} deg) vs target")
        if ip.baseline == "scores":
            if ip.baseline_scores is None:
                raise MRDError("baseline 'scores' needs baseline_scores (one per view), e.g. from the pixel-objective "
                               "run")
            label = ip.baseline_label or "the baseline run"
            return [float(x) for x in ip.baseline_scores], f"{label} is", label
        return None, "", ""

    def research(self) -> None:
        """The research code's test: paired Bayes factors of the result's similarity against the baseline's."""
        ip, model, weights = self.ip, self.model, self.weights
        scores = self.measures["result_vs_target"]["per_view"]["model"]
        baseline_scores, baseline_text, baseline_name = self._baseline()
        verdict: dict
        if baseline_scores is None:
            verdict = {"baseline": ip.baseline, "baseline_label": None, "outcome": "undetermined",
                       "sentence": f"Undetermined under {model} ({weights}): no {ip.baseline} renders were given, so "
                                   "there is no baseline to compare the result's similarity with."}
        elif len(scores) < 2 or any(s is None for s in scores) or any(s is None for s in baseline_scores):
            verdict = {"baseline": ip.baseline, "baseline_label": baseline_name, "outcome": "undetermined",
                       "sentence": f"Undetermined under {model} ({weights}): the paired tests need at least two "
                                   "views with a defined similarity."}
        else:
            verdict = {"baseline": ip.baseline, "baseline_label": baseline_name, "measure": "model",
                       **stats.paired_evidence(scores, baseline_scores, ip.draws, ip.seed, ip.prior_r)}
            verdict["outcome"] = research_outcome(verdict["bayes"])
            verdict["sentence"] = research_sentence(model, weights, verdict, baseline_text,
                                            self.null_out["percentile"] if self.null_out else None)
            if self.edir is not None:
                self.files["scores"] = self.rel(scores_plot(verdict, self.edir / "scores.png", baseline_name))
        self.research_out = verdict

    def verdict(self) -> None:
        """The verdict: three findings, one outcome (metamer.py)."""
        ip, measures = self.ip, self.measures
        who = f"{self.model} ({self.weights})" if self.weights not in ("none", "") else self.model
        first = measures["heldout_views"]["per_view"]["model"] if measures["heldout_views"] else None
        held = None
        if self.ho_t is not None and ip.heldout_target_repeats:
            results = ip.heldout_result_repeats or [ip.heldout_result_images]
            ceiling = seed_mean(self.scorer, ip.heldout_target_repeats, ip.heldout_masks, self.ht_feats)
            known = {id(ip.heldout_result_images): first} if first is not None else None
            result = seed_mean(self.scorer, results, ip.heldout_masks, self.ht_feats, known)
            held = (result, ceiling,
                    seed_mean(self.scorer, ip.heldout_control_repeats, ip.heldout_masks, self.ht_feats))
        verdict = metamer_verdict(ip, held, who, self.geometry_out, self.null_out, self.notes)
        if self.edir is not None and verdict["findings"]["equivalence"] is not None:
            self.files["equivalence"] = self.rel(equivalence_plot(verdict["findings"]["equivalence"],
                                                                   self.edir / "equivalence.png"))
        self.notes.extend(f"skipped: {s}" for s in ip.skipped)
        self.log(verdict["sentence"])
        self.verdict_out = verdict

    def evidence(self) -> dict:
        """report["evidence"]."""
        ip = self.ip
        return {"version": EVIDENCE_VERSION, "model": self.model, "weights": self.weights,
                "masked": ip.masks is not None, "n_views": self.n,
                "n_heldout_views": len(ip.heldout_target_images) if ip.heldout_target_images else 0,
                "control_degrees": float(ip.control_degrees), "measures": self.measures,
                "pixels": self.pixel_measures, "geometry": self.geometry_out, "panel": self.panel_out,
                "rsa": self.rsa_out, "null": self.null_out, "verdict": self.verdict_out,
                "research": self.research_out, "skipped": list(ip.skipped), "timings": self.timings,
                "files": self.files, "notes": self.notes, "seconds": time.time() - self.t0}
