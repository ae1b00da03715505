"""What a run writes while it runs: the targets and start files, each step's report entry, panel scores, render grids,
the parameters' own files (PLYs, textures), forward-gradient images, the checkpoint, and the caller's callback.
The loop (optimization/loop.py) hands the recorder one StepResult per epoch; end_of_run.py does the work after the
last one. The recorder reads the run's state (its config, folder, parameters, objective) and writes nothing back
into the loop but the report's history (`run.steps`, `run.extra`)."""
from __future__ import annotations

import json
import time
import traceback

import numpy as np

from ..config import panel_cadence
from ..render.tonemap import to_uint8
from .folder import REPORT_VERSION, grid


def versions() -> dict:
    import importlib.metadata as md
    out = {}
    for name in ("mrd", "mitsuba", "drjit", "torch", "numpy", "timm", "open_clip_torch", "lpips"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


class Recorder:
    def __init__(self, run):
        self.run = run

    # -- before the first step --------------------------------------------------------------------------------------
    def panel_models(self) -> list:
        from ..evidence import DEFAULT_MODELS
        c = self.run.cfg
        return list(c.panel_models if c.panel_models is not None else DEFAULT_MODELS)

    def build_panel(self):
        """The cross-model panel: in pixel-objective runs the research code's baseline, every logged step.
        Returns (panel for the steps or None, panel built or None: reused at the end of the run, even empty)."""
        run, c = self.run, self.run.cfg
        if c.panel_every < 0 or not c.evidence or (c.model not in ("mae", "dual_buffer") and c.panel_every == 0):
            return None, None
        from ..evidence import Panel
        panel = Panel(self.panel_models(), weights=c.weights, weights_dir=c.weights_dir, preprocess=c.preprocess,
                      seed=c.seed, log=run.log)
        if not panel.objectives:
            return None, panel
        panel.set_targets(run.target_np)
        return panel, panel

    def write_targets(self, target_np: list) -> None:
        folder = self.run.folder
        folder.write_png("renders/target_grid.png", grid(target_np))
        for i, t in enumerate(target_np):
            folder.write_png(f"renders/target_{i:03d}.png", t, "target_renders")

    # -- every step -------------------------------------------------------------------------------------------------
    def step(self, step, images: list, state: dict, callback=None):
        """Records one epoch's StepResult: its report entry and files, a checkpoint at logged steps, the callback."""
        run, c = self.run, self.run.cfg
        epoch, last = step.step, step.step == c.epochs - 1
        entry = {"step": epoch, "loss": step.loss, "similarity": step.similarity, "seconds": step.seconds,
                 **run.P.log_values(state, step.remeshed)}
        step.info = run.objective.step_info() or {}
        if step.info:
            entry["info"] = step.info
        np_images = None
        if run.panel is not None and (epoch % max(1, panel_cadence(c)) == 0 or last):
            from ..evidence import step_panel
            np_images = [np.asarray(im) for im in images]
            with run.profile("panel"):
                entry["panel"] = step_panel(run.panel, np_images)
            # which steps were scored (the others have no "panel" entry: no score, not a zero)
            run.extra.setdefault("panel_steps", {"every": panel_cadence(c), "steps": []})["steps"].append(epoch)
        step.files = self._step_files(epoch, last, step.remeshed, images, np_images, state)
        if step.files:
            entry["files"] = step.files
        if epoch % c.log_every == 0 or last or step.remeshed:
            run.steps.append(entry)
            self.write_report()
            self.checkpoint(epoch)  # right after the report, so that both tell the same history
        if callback is not None:
            step.render = to_uint8(np.asarray(images[0]))
            callback(step)
        return step

    def _step_files(self, epoch, last, remeshed, images, np_images, state) -> dict:
        run, c = self.run, self.run.cfg
        folder, files = run.folder, {}
        if epoch % c.render_every == 0 or last:
            np_images = np_images or [np.asarray(im) for im in images]
            files["render"] = folder.rel(folder.write_png(f"renders/step_{epoch:06d}.png", grid(np_images),
                                                          "step_renders"))
        if run.P.outputs_due(epoch, remeshed, last):
            files.update(run.P.write_outputs(folder, epoch, state))
        if c.forward and (epoch % c.render_every == 0 or last):
            with run.profile("forward"):
                files.update(self.forward_images(epoch))
        return files

    def forward_images(self, epoch: int) -> dict:
        """Forward-gradient images of view 0 along the research direction (see render/gradient_images.py)."""
        from ..render.gradient_images import derivative_image, visualize
        run = self.run
        keys = list(run.P.gradient_keys)
        if not keys:
            return {}
        g = derivative_image(run.mi, run.scene, run.params, keys, run.sensors[0], seed=run.cfg.seed)
        run.P.apply()
        out = {}
        for name, im in visualize(g).items():
            p = run.folder.write_png(f"forward/{name}_{epoch:06d}.png", im, f"forward_{name}")
            out[f"forward_{name}"] = run.folder.rel(p)
        return out

    def checkpoint(self, epoch: int) -> None:
        from ..optimization import checkpoint
        run = self.run
        with run.profile("checkpoint"):
            arrays = {**run.P.checkpoint(), **checkpoint.with_prefix("best_", run.best_state)}
            checkpoint.save(run.folder.path, arrays, {
                "epoch": epoch, "best": run.best, "bad": run.bad, "steps": run.steps,
                "start_eval": run.start_eval, "files": run.folder.files, "started": run.folder.started})

    # -- the report -------------------------------------------------------------------------------------------------
    def report(self) -> dict:
        run, c = self.run, self.run.cfg
        try:
            from ..render.variant import variant_name
            variant = variant_name() if run.mi is not None else None
        except Exception:
            variant = None
        obj = run.objective
        r = {"version": REPORT_VERSION, "status": run.status, "error": run.error, "mode": c.mode,
             "scene": c.scene if run.spec is None else run.spec.name, "envmap": run.spec.environment.name,
             "model": c.model, "weights": obj.weights_used if obj else c.weights, "preprocess": c.preprocess,
             "variant": variant, "versions": versions(),
             "integrator": {"profile": c.integrator, **run.spec.integrator_dict(), "spp_grad": run.spp_grad,
                            **(run.guiding.describe() if run.guiding else {})},
             "objective": obj.describe() if obj else {"name": c.model}, "config": c.to_dict(),
             "started": run.folder.started, "seconds": time.time() - run.folder.started,
             "steps": run.steps, "profile": run.profile.summary(), "files": run.folder.files}
        if run.resumed:
            r["resumed"] = run.resumed
        r.update(run.extra)
        return r

    def write_report(self) -> None:
        self.run.folder.write_json("report.json", self.report())

    def write_report_quietly(self) -> None:
        """The report, whatever else failed. On a full disk the atomic write has no room for a second copy: the
        short form (status, error, steps) then overwrites the old report in place, which frees its space first."""
        run = self.run
        try:
            self.write_report()
        except Exception:
            short = {"version": REPORT_VERSION, "status": run.status, "error": run.error,
                     "note": "short report: the full one could not be written", "steps": run.steps}
            try:
                (run.folder.path / "report.json").write_text(json.dumps(short, default=str))
            except Exception:
                pass

    def write_error_log(self, name: str = "error.log") -> None:
        try:
            (self.run.folder.path / name).write_text(traceback.format_exc())
        except OSError:
            pass
