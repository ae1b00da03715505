"""What a run writes after its last step, whichever way it ended (done, stopped early, cancelled, failed): the final
state's files and renders, the start/end measures, the turntable and the evidence (evidence/for_run.py), the curves,
the report and its HTML page. Nothing here may hide the run's own outcome: errors become warnings in the log."""
from __future__ import annotations

import copy

import numpy as np

from ..errors import Cancelled
from ..seeds import TURNTABLE, render_seed
from .folder import grid


def finish(run) -> None:
    """Final files, renders, metrics, evidence, plots and report; runs after success, failure and cancellation."""
    from ..peak_memory import loop_end, run_end
    rec = run.recorder
    memory = loop_end(reset=run.reset_peak_after_loop)  # mrd bench step resets it
    try:
        if run.P is not None and run.start_eval is not None:
            _final_state(run)
    except Cancelled:  # a signal while finishing: keep what is written, say what is missing
        run.extra["finish_note"] = "cancelled during the end-of-run work: final renders or evidence incomplete"
        run.log(f"warning: {run.extra['finish_note']}")
    except Exception as exc:  # finishing must never hide the run's own outcome
        run.log(f"warning: could not write the final results ({type(exc).__name__}: {exc})")
        rec.write_error_log("finish-error.log")
    finally:
        plots(run)
        run.extra["memory"] = run_end(memory)
        rec.write_report_quietly()
        try:
            from ..evidence import write_report_html
            write_report_html(run.folder.path)
        except Exception as exc:
            run.log(f"warning: could not write report.html ({type(exc).__name__}: {exc})")


def _final_state(run) -> None:
    st = run.P.end_state(run.final_state, run.status in ("cancelled", "failed"))
    run.P.write_final(run.folder, st)
    run.extra.update(run.P.final_metrics(st, run.start_eval))
    images, sims, loss = run.evaluate()
    run.final_images = images
    run.folder.write_png("renders/final_grid.png", grid(images))
    for i, im in enumerate(images):
        run.folder.write_png(f"renders/final_{i:03d}.png", im, "final_renders")
    run.extra["similarity"] = {"start": run.start_eval["similarity"], "end": float(np.mean(sims)),
                               "per_view_end": sims}
    run.extra["loss"] = {"start": run.start_eval["loss"], "end": loss}
    from ..evidence.for_run import end_of_run_for
    ev = end_of_run_for(run)  # turntable, control and held-out renders, the verdict (evidence/for_run.py)
    if ev is not None:
        run.extra["evidence"] = ev


def plots(run) -> None:
    from .figures import curves_png, optimization_gif
    folder = run.folder
    try:
        if run.steps:
            curves_png(folder.path / "curves.png", run.steps)
            folder.files["curves"] = "curves.png"
        frames = folder.files.get("step_renders", [])
        if frames:
            optimization_gif(folder.path / "optimization.gif", [folder.path / f for f in frames])
            folder.files["video"] = "optimization.gif"
    except Exception as exc:
        run.log(f"warning: could not write plots ({type(exc).__name__}: {exc})")


def render_all(run, scene, sensors, spp=None, params=None, stream=TURNTABLE, first=0) -> list[np.ndarray]:
    import drjit as dr

    from ..render.tonemap import to_ldr
    with dr.suspend_grad():
        return [np.asarray(to_ldr(run.mi.render(scene, params, sensor=s, spp=spp or run.cfg.spp,
                                                seed=render_seed(stream, first + i, run.cfg.seed))))
                for i, s in enumerate(sensors)]


def masks(run, spec, sensors, vertices=None, faces=None) -> list[np.ndarray]:
    """Object masks from Mitsuba's depth AOV (depth > 0 where a ray hits the object)."""
    m = copy.copy(spec)
    m.integrator = {"type": "aov", "aovs": "dd:depth"}
    m.extras = {k: v for k, v in spec.extras.items() if "light" in k or "emitter" in k}
    m.lights = [x for x in spec.lights if not x.is_visible_shape()]  # an area lamp is no part of the object
    scene = m.load(vertices=vertices, faces=faces) if vertices is not None else m.load()
    return [np.asarray(run.mi.render(scene, sensor=s, spp=1))[..., -1] > 0 for s in sensors]


def turntable(run, frames: int) -> None:
    """Result and target seen from a ring of cameras around +Z, as GIFs beside the report."""
    import imageio.v3 as iio

    from ..render.tonemap import to_uint8
    from ..scene.cameras import CameraRig, look_at
    center, radius = run.spec.bounds()
    dist = run.spec.cameras.distance or 2.8 * radius
    mats = []
    for k in range(frames):
        a = 2 * np.pi * k / frames
        eye = center + dist * np.array([np.cos(a) * np.cos(0.35), np.sin(a) * np.cos(0.35), np.sin(0.35)])
        mats.append(look_at(eye, center))
    rig = CameraRig(frames, run.spec.cameras.fov, run.cfg.width, run.cfg.height, matrices=mats)
    spec = copy.copy(run.spec)
    sensors = spec.sensors(rig, spp=run.cfg.spp)
    for name, scene, params in (("turntable", run.scene, run.params), ("turntable_target", run.spec.load(), None)):
        imgs = render_all(run, scene, sensors, params=params, first=0 if params is not None else frames)
        iio.imwrite(run.folder.path / "renders" / f"{name}.gif", np.stack([to_uint8(i) for i in imgs]),
                    extension=".gif", duration=120, loop=0)
