"""The one call the run loop makes at its end: `end_of_run_for(run)` renders what the evidence needs and returns
report["evidence"] (or None with --no-evidence).

Renders, every one with its own seed stream (seeds.py), so that no two kinds of render share noise:
- the rotated control from the optimization cameras (the research-compatible statistics);
- on the held-out rig (`--heldout-views`, default 12, disjoint from the optimization cameras): one reference render
  of the target, and per render seed k = 1..S (`--heldout-seeds`, default 2) an independent re-render of the target
  (the noise ceiling) and a render of the result, and one render of the rotated control.
A cancelled run skips the control, the held-out renders, the panel, LPIPS and the turntable (each would cost as
much as several optimization steps), keeps the cheap parts (similarity and pixel measures on the final renders,
the physical difference) and lists what it skipped in the report.
"""
from __future__ import annotations

import math
import time

import numpy as np

from .. import seeds

QUICK_SKIPS = ["the held-out equivalence test", "the rotated control", "the cross-model panel", "LPIPS",
               "the turntable"]


def _render(run, scene, sensors, stream: int, first: int, params=None) -> list:
    import drjit as dr

    from ..render.tonemap import to_ldr
    with dr.suspend_grad():
        return [np.asarray(to_ldr(run.mi.render(scene, params, sensor=s, spp=run.cfg.spp,
                                                seed=seeds.render_seed(stream, first + i, run.cfg.seed))))
                for i, s in enumerate(sensors)]


def pixel_footprint(spec, rig) -> float | None:
    """The width of one pixel at the object's centre, in units of the target's bounding-box diagonal."""
    try:
        v = np.asarray(spec.vertices, np.float64)
        diag = float(np.linalg.norm(v.max(0) - v.min(0)))
        center, radius = spec.bounds()
        mats = spec.camera_matrices(rig)
        dist = float(np.mean([np.linalg.norm(np.asarray(m)[:3, 3] - center) for m in mats]))
        return 2 * dist * math.tan(math.radians(rig.fov) / 2) / rig.width / diag
    except Exception:
        return None


def end_of_run_for(run) -> dict | None:
    c, spec = run.cfg, run.spec
    quick = run.status == "cancelled"
    if c.turntable_frames > 0 and not quick:
        with run.profile("turntable"):
            run._turntable(c.turntable_frames)
    if not c.evidence:
        return None
    from ..errors import MRDError
    from . import EvidenceInputs, end_of_run, find_null
    from .heldout import control_spec, heldout_rig
    notes = []
    t0 = time.perf_counter()
    from ..peak_memory import release
    release()   # the loop's freed buffers (Dr.Jit's cache, glibc's free lists) go back before the evidence's networks
    with run.profile("evidence"):
        control = ho_t = ho_r = masks = ho_masks = None
        t_rep = r_rep = c_rep = None
        rig = None
        if not quick:
            cspec = control_spec(spec)
            cscene = cspec.load()
            control = _render(run, cscene, run.sensors, seeds.CONTROL, 0)
            rig = heldout_rig(spec, getattr(c, "heldout_views", 12))
            ho_sensors = spec.sensors(rig, spp=c.spp)
            m, k = len(ho_sensors), max(1, int(getattr(c, "heldout_seeds", 2)))
            tscene = spec.load()
            ho_t = _render(run, tscene, ho_sensors, seeds.HELDOUT_TARGET, 0)
            t_rep = [_render(run, tscene, ho_sensors, seeds.HELDOUT_TARGET, j * m) for j in range(1, k + 1)]
            r_rep = [_render(run, run.scene, ho_sensors, seeds.HELDOUT_RESULT, j * m, run.params) for j in range(k)]
            c_ho = cspec.sensors(rig, spp=c.spp)  # the same cameras (pinned matrices)
            # the control needs one seed: its deficit is far from the ceiling when the network is informative
            c_rep = [_render(run, cscene, c_ho, seeds.CONTROL, len(run.sensors))]
            ho_r = r_rep[0]
            if c.masks:
                masks = run._masks(spec, run.sensors)
                ho_masks = run._masks(spec, ho_sensors)
        renders = time.perf_counter() - t0
        null = None
        try:
            null = find_null(spec.name, spec.environment.name, c.model, run.objective.weights_used, c.preprocess)
        except MRDError as exc:
            notes.append(f"null distribution not used: {exc}")
        st = run.final_state if c.mode == "shape" else None
        inputs = EvidenceInputs(
            objective=run.objective, target_images=run.target_np, result_images=run.final_images,
            control_images=control, heldout_target_images=ho_t, heldout_result_images=ho_r, masks=masks,
            heldout_masks=ho_masks, target_mesh=(spec.vertices, spec.faces) if st else None,
            result_mesh=(st["vertices"], st["faces"]) if st else None, null=null,
            run_dir=run.folder.path, panel_models=run.panel_models, panel_weights=c.weights,
            weights_dir=c.weights_dir, preprocess=c.preprocess,
            target_features=None if c.masks else run.target_features, scene=spec.name,
            envmap=spec.environment.name, seed=c.seed, log=run.log,
            heldout_target_repeats=t_rep, heldout_result_repeats=r_rep, heldout_control_repeats=c_rep,
            margin=float(getattr(c, "equivalence_margin", 0.5)),
            material=run.extra.get("material") if c.mode == "material" else None,
            pixel_footprint=pixel_footprint(spec, rig or spec.cameras) if c.mode == "shape" else None,
            skipped=list(QUICK_SKIPS) if quick else [], quick=quick,
            **({"panel": run.panel_built} if getattr(run, "panel_built", None) is not None and not quick else {}))
        ev = end_of_run(inputs)
        ev["notes"].extend(notes)
        ev["timings"] = {"renders": renders, **ev["timings"]}
        ev["seconds"] = time.perf_counter() - t0
    return ev
