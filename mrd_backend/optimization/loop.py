"""The one run loop, for shape and material metamers alike, in the steps of Mitsuba's shape-optimization tutorial:

    build     render every view of the target once, cache the objective's view of it, build the parameters
    epoch     for every view: push the parameters into the scene, render, loss against the cached target, backward,
              step the optimizer
    evaluate  render every view without gradients
    stop      after the last epoch, when the loss stops improving (patience), on NaN, or when asked to

What surrounds it lives elsewhere: what is optimized (parameters.py: one interface, shape.py and material.py
implement it, so the loop never asks which), what is written (outputs/recorder.py gets a StepResult per epoch,
outputs/end_of_run.py does the final renders, evidence and report), how a run continues (resume.py,
checkpoint.py). `execute` adds progress, streaming to a callback and cancellation around the loop.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import RunConfig, target_seed, view_seed
from ..errors import Cancelled, InternalError, MRDError
from ..interrupt import cancelled_by
from ..outputs import end_of_run
from ..outputs.folder import RunFolder, default_out
from ..outputs.recorder import Recorder
from ..render.guiding import steady_guiding
from ..seeds import EVALUATE, render_seed
from . import resume
from .parameters import Parameters, parameter_class, resolved_config
from .timing import Profile


@dataclass
class StepResult:
    step: int
    loss: float
    similarity: float
    seconds: float
    remeshed: bool = False
    vertices: np.ndarray | None = None
    faces: np.ndarray | None = None
    render: np.ndarray | None = None            # uint8 (H, W, 3), view 0
    textures: dict = field(default_factory=dict)
    material: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)


@dataclass
class RunResult:
    out: Path
    status: str
    report: dict
    vertices: np.ndarray | None = None
    faces: np.ndarray | None = None


def optimize(config: RunConfig | dict | None = None, target=None, start=None, callback=None, should_stop=None,
             progress: bool = False, log=print, resume: str | Path | None = None) -> RunResult:
    """Runs one metamer optimization. `target`: a SceneSpec (else `config.scene` is loaded); `start`: (vertices,
    faces) of the start shape (else `config.start`); `callback(StepResult)` after every logged step;
    `should_stop()` is asked between steps. Returns a RunResult; raises MRDError for bad input (the run folder
    and its report.json say how far it got).

    `resume=RUN_DIR` continues a cancelled, killed or failed run from its last checkpoint, in the same folder and
    to the end its config names (`config` may then be None, or a dict of keys to change, such as {"epochs": N})."""
    if resume is not None:
        return _resume(Path(resume).resolve(), config, callback, should_stop, progress, log)
    if isinstance(config, dict):
        config = RunConfig.from_dict(config)
    return Run(config or RunConfig(), target, start, log).execute(callback, should_stop, progress)


def _resume(folder: Path, changes, callback, should_stop, progress, log) -> RunResult:
    cfg, target, start, saved, finished = resume.resume(folder, changes, log)
    if finished is not None:
        return RunResult(folder, finished["status"], finished)
    return Run(cfg, target, start, log, folder=folder, checkpoint=saved).execute(callback, should_stop, progress)


class Run:
    reset_peak_after_loop = False  # `mrd bench` sets it: report["memory"] then tells the loop's peak from the end's

    def __init__(self, cfg: RunConfig, target=None, start=None, log=print, folder=None, checkpoint=None):
        from ..preflight import check_inputs
        from ..scenes import load_scene

        start = check_inputs(cfg, target, start)  # bad input: one line now, before set-up and any run folder
        self.log = log
        self.cfg = c = resolved_config(cfg)
        self.target_from_config = target is None
        self.spec = target if target is not None else load_scene(c.scene, c.envmap, c.views, c.width, up=c.up)
        _place_cameras(self.spec, c)
        self.start = start
        self.resume_from = checkpoint  # (arrays, counters) of the checkpoint a resumed run continues from
        named = dataclasses.replace(c, scene=self.spec.name, envmap=self.spec.environment.name)  # a given target's
        self.folder = RunFolder(folder, reuse=True) if folder is not None else RunFolder(c.out or default_out(named))
        c.out = str(self.folder.path)
        self.profile = Profile()
        self.recorder = Recorder(self)
        # Built by _setup (None until then: the report and the end-of-run work check for that).
        self.mi = self.objective = self.scene = self.params = self.panel = self.panel_built = None
        self.P: Parameters | None = None
        self.guiding = None             # render/guiding.py's GuidingReuse, or False without a guiding structure
        self.spp_grad = c.spp           # the backward pass's samples per pixel (the parameters' kind chooses)
        # The loop's state and the report's history.
        self.status, self.error = "running", None
        self.steps: list[dict] = []
        self.extra: dict = {}
        self.resumed: list = []
        self.start_eval = self.final_state = self.final_images = self.best_state = None
        self.best, self.bad = math.inf, 0
        self._finished = False  # _finish ran (it runs once, whichever way the run ends)

    # -- build ------------------------------------------------------------------------------------------------------
    def _objective(self):
        from ..objectives import build_objective
        c = self.cfg
        opts = dict(weights=c.weights, weights_dir=c.weights_dir, preprocess=c.preprocess, seed=c.seed, log=self.log,
                    render_size=(c.width, c.height))
        if c.classify:
            if c.class_index is None:
                raise MRDError(f"--classify needs a class: scene {c.scene!r} has no default, give --class-index N")
            opts.update(classify=c.class_index, alpha=c.alpha)
        return build_objective(c.model, **opts)

    def _setup(self):
        from ..render.tonemap import to_ldr
        from ..render.variant import mitsuba
        mi = self.mi = mitsuba()
        c, spec = self.cfg, self.spec
        if c.deterministic:
            from ..determinism import make_deterministic
            make_deterministic(self.log)
        self.objective = self._objective()  # before any rendering: missing weights stop here
        kind = parameter_class(c.mode)
        self.spp_grad = kind.integrator(spec, c)
        self.sensors = spec.sensors(spp=c.spp)
        self.log(f"{c.mode} metamer: scene {spec.name}, env {spec.environment.name}, model {c.model} "
                 f"({self.objective.weights_used}), {len(self.sensors)} views {c.width}x{c.height}, {c.spp} spp, "
                 f"{c.epochs} epochs, variant {mi.variant()}")
        note = kind.integrator_note(c, self.spp_grad)
        if note:
            self.log(note)
        # Targets: rendered once, tone-mapped, their features computed once per view and cached.
        with self.profile("targets"):
            tscene = spec.load()
            self.target_images = [to_ldr(mi.render(tscene, sensor=s, spp=c.spp, seed=target_seed(c, i)))
                                  for i, s in enumerate(self.sensors)]
            self.target_np = [np.asarray(t) for t in self.target_images]
            self.target_features = [self.objective.prepare(t) for t in self.target_images]
        self.panel, self.panel_built = self.recorder.build_panel()
        self.recorder.write_targets(self.target_np)
        self.P = kind.build(mi, spec, c, self.log, self.start)
        self.P.write_start(self.folder)
        self.scene, self.params = self.P.scene, self.P.params
        # same guiding, no per-step compiles or 1.2 GB buffers; each view's octree kept guiding_every passes
        self.guiding = steady_guiding(self.scene.integrator(), every=c.guiding_every)   # (render/guiding.py)

    # -- epoch and evaluate -----------------------------------------------------------------------------------------
    def render(self, sensor, seed):
        from ..render.tonemap import to_ldr
        with self.profile("render"):
            return self.profile.settle(to_ldr(self.mi.render(self.scene, self.params, sensor=sensor,
                                                             spp=self.cfg.spp, spp_grad=self.spp_grad, seed=seed)))

    def epoch(self, epoch: int) -> tuple[float, float, list]:
        import drjit as dr
        c, P, obj = self.cfg, self.P, self.objective
        n = len(self.sensors)
        losses, sims, images = [], [], []
        for i, sensor in enumerate(self.sensors):
            seed = view_seed(c, epoch, i, n)  # fresh noise every step, never a target's (research profile: seed * view)
            with self.profile("apply"):
                P.apply()
            img = self.render(sensor, seed)
            img2 = self.render(sensor, view_seed(c, epoch, i, n, second=True)) \
                if obj.renders_per_view == 2 else None
            with self.profile("objective"):
                loss = _flat(obj.loss(img, self.target_features[i], img2))
                reg = P.regularization()
                if reg is not None:  # research: with --classify, regularizers are scaled like the metamer term
                    reg = reg * obj.metamer_weight
                total = self.profile.settle(loss + reg if reg is not None else loss)
            with self.profile("backward"):
                dr.backward(total)
            if c.schedule == "per_view":
                with self.profile("step"):
                    P.step()
            losses.append(total)
            with self.profile("similarity"):
                sims.append(obj.similarity(self.target_features[i]))
            images.append(dr.detach(img))
        if c.schedule == "per_epoch":
            with self.profile("step"):
                P.step()
        loss = float(np.mean([float(dr.detach(x)[0]) for x in losses]))
        return loss, float(np.mean(sims)), images

    def evaluate(self, spp=None) -> tuple[list[np.ndarray], list[float], float]:
        """Renders the current state from every view (no gradients): images, per-view similarity, mean loss."""
        import drjit as dr
        from ..render.tonemap import to_ldr
        obj, n = self.objective, len(self.sensors)

        def render(s, k):
            return to_ldr(self.mi.render(self.scene, self.params, sensor=s, spp=spp or self.cfg.spp,
                                         seed=render_seed(EVALUATE, k, self.cfg.seed)))
        with dr.suspend_grad():
            self.P.apply()
            images, sims, losses = [], [], []
            for i, s in enumerate(self.sensors):
                img = render(s, i)
                img2 = render(s, n + i) if obj.renders_per_view == 2 else None
                losses.append(float(_flat(obj.loss(img, self.target_features[i], img2))[0]))
                sims.append(obj.similarity(self.target_features[i]))
                images.append(np.asarray(img))
        return images, sims, float(np.mean(losses))

    # -- the loop and when it stops ---------------------------------------------------------------------------------
    def _begin(self) -> int:
        """The start evaluation, or the state of the checkpoint a resumed run continues from; the first epoch."""
        if self.resume_from is not None:
            return resume.restore(self, *self.resume_from)
        images, sims, loss0 = self.evaluate()
        self.start_eval = {"loss": loss0, "similarity": float(np.mean(sims)), "per_view": sims,
                           **self.P.start_metrics()}
        self.best_state = self.P.state()
        return 0

    def _loop(self, callback, should_stop, progress):
        c, P = self.cfg, self.P
        first = self._begin()
        bar = _progress(c.epochs, first) if progress else None
        self.final_state = P.state()
        self.status = "running"
        for epoch in range(first, c.epochs):
            if should_stop is not None and should_stop():
                raise Cancelled()
            t0 = time.perf_counter()
            loss, sim, images, state = self._checked_epoch(epoch)
            self.final_state = state
            with self.profile("remesh"):
                remeshed = P.end_of_epoch(epoch)
            if remeshed and self.guiding:
                self.guiding.forget()           # new topology: the octrees' sample space is another one
            seconds = time.perf_counter() - t0
            if loss < self.best - c.min_delta:
                self.best, self.bad, self.best_state = loss, 0, state
            else:
                self.bad += 1
            with self.profile("log"):
                step = StepResult(epoch, loss, sim, seconds, remeshed, **P.values(state))
                self.recorder.step(step, images, state, callback)
            if bar is not None:
                bar.set_postfix(loss=f"{loss:.4g}", sim=f"{sim:.4f}", s_per_step=f"{seconds:.2f}")
                bar.update(1)
            if c.patience and self.bad >= c.patience:
                self.log(f"early stop after epoch {epoch}: no improvement of the loss for {c.patience} epochs; "
                         f"keeping the best state (loss {self.best:.4g})")
                P.restore(self.best_state)
                self.final_state, self.status = self.best_state, "stopped_early"
                break
        if bar is not None:
            bar.close()
        if self.status == "running":
            self.status = "done"
        self.final_state = P.state()

    def _checked_epoch(self, epoch: int) -> tuple[float, float, list, dict]:
        """One epoch and the parameters' state after it; MRDError when the loss or the state is not finite."""
        try:
            loss, sim, images = self.epoch(epoch)
        except MRDError:
            raise
        except Exception:
            if self.P.is_finite():
                raise
            loss, sim, images = math.nan, math.nan, []  # Mitsuba fails on NaN geometry before the check below
        state = self.P.state()
        if not math.isfinite(loss) or not all(np.isfinite(v).all() for v in state.values()):
            raise MRDError(f"the loss or the parameters became NaN/inf at epoch {epoch}: lower --lr "
                           f"(now {self.P.lr:g}) or raise -l; the last good state is in {self.folder.path}")
        return loss, sim, images, state

    # -- around the loop: streaming, cancellation, errors -----------------------------------------------------------
    def execute(self, callback=None, should_stop=None, progress=False) -> RunResult:
        resume.open_folder(self)
        self.recorder.write_report()
        reraise = None
        try:
            self._setup()
            self.recorder.write_report()
            self._loop(_guarded(callback), should_stop, progress)
        except (Cancelled, KeyboardInterrupt, SystemExit) as exc:
            self._cancelled()
            if isinstance(exc, SystemExit):  # the caller's own exit (from a callback): honour it after finishing
                reraise = exc
        except MRDError as exc:
            self.status, self.error = "failed", str(exc)
            raise
        except OSError as exc:
            self.status, self.error = "failed", _os_error(exc, self.folder.path)
            raise MRDError(self.error) from None
        except Exception as exc:
            if cancelled_by(exc):  # a signal that Dr.Jit wrapped in its own error
                self._cancelled()
                self._finish()
                return self._result()
            self.status = "failed"
            self.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            self.recorder.write_error_log()
            raise InternalError(f"internal error ({self.error}); details in {self.folder.path / 'error.log'}") from exc
        finally:
            if not self._finished:
                self._finish()
        if reraise is not None:
            raise reraise
        return self._result()

    def _cancelled(self):
        self.status = "cancelled"
        self.recorder.write_report_quietly()  # first, so that a second signal or a kill cannot leave it `running`
        self.log(f"cancelled: everything written so far is in {self.folder.path}; continue with "
                 f"`mrd optimize --resume {self.folder.path}`")

    def _finish(self):
        self._finished = True
        end_of_run.finish(self)

    def _result(self) -> RunResult:
        mesh = self.P.final_mesh(self.final_state) if self.P is not None else (None, None)
        return RunResult(self.folder.path, self.status, self.recorder.report(), *mesh)

    # -- what evidence/for_run.py reads from the run ------------------------------------------------------------------
    @property
    def panel_models(self) -> list:
        return self.recorder.panel_models()

    def _turntable(self, frames: int):
        end_of_run.turntable(self, frames)

    def _masks(self, spec, sensors, vertices=None, faces=None):
        return end_of_run.masks(self, spec, sensors, vertices, faces)


def _place_cameras(spec, c: RunConfig) -> None:
    """The config's camera and environment choices applied to the target's rig."""
    rig = spec.cameras
    if not rig.matrices:
        rig.n_views = c.views
    rig.width, rig.height = c.width, c.height
    if c.camera_distance is not None:      # --camera-distance / --profile research
        rig.distance = float(c.camera_distance)
    if c.camera_target == "origin":
        rig.center = (0.0, 0.0, 0.0)
    if c.env_rotation is not None:         # --env-rotation / --profile research (-90: the research's frame)
        spec.environment.rotation_z = float(c.env_rotation)


def _guarded(callback):
    """The caller's callback; an exception in it stops the run as the caller's error, not as an internal one."""
    if callback is None:
        return None

    def call(step):
        try:
            callback(step)
        except Exception as exc:
            raise MRDError(f"the step callback raised {type(exc).__name__}: {_first_line(exc)} (at step {step.step}); "
                           "the run stopped there and kept its files") from exc
    return call


def _first_line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def _os_error(exc: OSError, folder: Path) -> str:
    import errno
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"the disk is full (writing {exc.filename or folder}): free some space, then continue the run with "
                f"`mrd optimize --resume {folder}`")
    return (f"cannot read or write {exc.filename or folder}: {exc.strerror or exc}; the run stopped, its files are "
            f"kept in {folder}")


def _flat(x):
    """A loss as a width-1 Dr.Jit Float (objectives may return 0-d tensors)."""
    return x.array if hasattr(x, "array") else x


def _progress(total: int, done: int):
    from tqdm import tqdm
    bar = tqdm(total=total, unit="step", dynamic_ncols=True)
    if done:
        bar.update(done)
    return bar
