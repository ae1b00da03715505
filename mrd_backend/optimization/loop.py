"""The one run loop, for shape and material metamers alike: render each view, compare the objective's view of the
render with its cached view of the target, step the parameters. Progress, streaming, outputs and cancellation are
around the loop (in `Run`), not inside it."""
from __future__ import annotations

import dataclasses
import math
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import RunConfig, gradient_spp, integrator_settings, panel_cadence, target_seed, view_seed
from ..errors import Cancelled, InternalError, MRDError
from ..render.guiding import steady_guiding
from ..interrupt import cancelled_by
from .timing import Profile
from ..outputs.folder import REPORT_VERSION, RunFolder, default_out, grid
from ..seeds import EVALUATE, TURNTABLE, render_seed


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
        return _resume(Path(resume), config, callback, should_stop, progress, log)
    if isinstance(config, dict):
        config = RunConfig.from_dict(config)
    return Run(config or RunConfig(), target, start, log).execute(callback, should_stop, progress)


FINISHED = ("done", "stopped_early")


def _resume(folder: Path, changes, callback, should_stop, progress, log) -> RunResult:
    from . import checkpoint
    from ..scene.io import load_spec
    folder = folder.resolve()
    if not (folder / "config.json").is_file():
        raise MRDError(f"{folder} is not a run folder (no config.json): give the folder `mrd optimize` printed")
    if not checkpoint.resumable(folder):
        raise MRDError(f"{folder} has no checkpoint (it was written by an mrd without resume): start a new run")
    cfg = RunConfig.from_file(folder / "config.json")
    if isinstance(changes, RunConfig):
        changes = {"epochs": changes.epochs}
    changes = dict(changes or {})
    if set(changes) - {"epochs"}:
        raise MRDError(f"a resumed run keeps its configuration; only epochs can change (not "
                       f"{', '.join(sorted(set(changes) - {'epochs'}))})")
    cfg = RunConfig.from_dict({**cfg.to_dict(), **changes})  # the same checks as any config
    report = _read_json(folder / "report.json")
    saved = checkpoint.load(folder)
    if report.get("status") in FINISHED and (saved is None or saved[1]["epoch"] + 1 >= cfg.epochs):
        log(f"{folder} already finished ({report['status']}); nothing to resume")
        return RunResult(folder, report["status"], report)
    spec_file = folder / checkpoint.DIR / "target.npz"
    run = Run(cfg, load_spec(spec_file) if spec_file.is_file() else None, checkpoint.load_start(folder), log,
              folder=folder, checkpoint=saved)
    return run.execute(callback, should_stop, progress)


def _read_json(path: Path) -> dict:
    import json
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def versions() -> dict:
    import importlib.metadata as md
    out = {}
    for name in ("mrd", "mitsuba", "drjit", "torch", "numpy", "timm", "open_clip_torch", "lpips"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


class Run:
    def __init__(self, cfg: RunConfig, target=None, start=None, log=print, folder=None, checkpoint=None):
        from ..scenes import materials as material_scenes
        from ..objectives import objective_class
        from ..preflight import check_inputs
        from ..scenes import load_scene

        start = check_inputs(cfg, target, start)  # bad input: one line now, before set-up and any run folder
        self.log = log
        native = objective_class(cfg.model).native_size
        is_material = cfg.scene in material_scenes.names() or cfg.mode == "material"
        self.cfg = cfg.resolved(is_material, native)
        c = self.cfg
        self.target_from_config = target is None
        self.spec = target if target is not None else load_scene(c.scene, c.envmap, c.views, c.width, up=c.up)
        rig = self.spec.cameras
        if not rig.matrices:
            rig.n_views = c.views
        rig.width, rig.height = c.width, c.height
        if c.camera_distance is not None:      # --camera-distance / --profile research
            rig.distance = float(c.camera_distance)
        if c.camera_target == "origin":
            rig.center = (0.0, 0.0, 0.0)
        if c.env_rotation is not None:         # --env-rotation / --profile research (-90: the research's frame)
            self.spec.environment.rotation_z = float(c.env_rotation)
        self.start = start
        self.profile = Profile()
        self.steps: list[dict] = []
        self.status = "running"
        self.error = None
        self.extra: dict = {}
        self.resumed: list = []
        self._finished = False  # _finish ran (it runs once, whichever way the run ends)
        self.resume_from = checkpoint  # (arrays, counters) of the checkpoint a resumed run continues from
        named = dataclasses.replace(c, scene=self.spec.name, envmap=self.spec.environment.name)  # a given target's
        self.folder = RunFolder(folder, reuse=True) if folder is not None else RunFolder(c.out or default_out(named))
        c.out = str(self.folder.path)

    # -- building --------------------------------------------------------------------------------------------------
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

    def _start_mesh(self):
        from ..scene.meshes import check_mesh, icosphere
        from ..scenes import load_target_mesh
        if self.start is not None:
            v, f = self.start
        elif self.cfg.start == "icosphere" and self.cfg.start_placement == "origin":
            v, f = icosphere(self.cfg.start_subdivisions)   # research: ico_10k.ply at the origin, its file scale
        elif self.cfg.start == "icosphere":
            center, radius = self.spec.bounds()
            v, f = icosphere(self.cfg.start_subdivisions)
            v = (v * 0.7 * radius + center).astype(np.float32)
        elif self.cfg.start == "target":  # the reconstruction control: start at the answer
            v, f = self.spec.vertices, self.spec.faces
        else:
            v, f = load_target_mesh(self.cfg.start)
        check_mesh(v, f, "start mesh", closed=True)
        return np.asarray(v, np.float32), np.asarray(f, np.int32)

    def _setup(self):
        import drjit as dr  # noqa: F401  (the variant is set by mitsuba())
        from ..render.tonemap import to_ldr
        from ..render.variant import mitsuba
        mi = self.mi = mitsuba()
        c, spec = self.cfg, self.spec
        if c.deterministic:
            from ..determinism import make_deterministic
            make_deterministic(self.log)
        self.objective = self._objective()  # before any rendering: missing weights stop here
        if c.mode == "shape" or spec.integrator is None:
            from .material import DEFAULT_INTEGRATOR  # material runs on objects without one: a path tracer
            spec.integrator = (integrator_settings(c.integrator, c.spp) if c.mode == "shape"
                               else dict(DEFAULT_INTEGRATOR))
        self.spp_grad = gradient_spp(c.integrator, c.spp) if c.mode == "shape" else c.spp   # the backward's samples
        self.sensors = spec.sensors(spp=c.spp)
        self.log(f"{c.mode} metamer: scene {spec.name}, env {spec.environment.name}, model {c.model} "
                 f"({self.objective.weights_used}), {len(self.sensors)} views {c.width}x{c.height}, {c.spp} spp, "
                 f"{c.epochs} epochs, variant {mi.variant()}")
        if c.mode == "shape":
            self.log(f"integrator profile 'fast': no indirect-silhouette (shadow-boundary) gradients, gradients at "
                     f"{self.spp_grad} spp; 5-14x faster per epoch on a CPU at equal chamfer (docs/speed.md); "
                     "--integrator research for the research code's settings"
                     if c.integrator == "fast" else "integrator profile 'research': the research code's "
                     "direct_projective settings (octree guiding; --integrator fast is 5-14x faster on a CPU)")
        # Targets: rendered once, tone-mapped, their features computed once per view and cached.
        with self.profile("targets"):
            tscene = spec.load()
            self.target_images = [to_ldr(mi.render(tscene, sensor=s, spp=c.spp, seed=target_seed(c, i)))
                                  for i, s in enumerate(self.sensors)]
            self.target_np = [np.asarray(t) for t in self.target_images]
            self.target_features = [self.objective.prepare(t) for t in self.target_images]
        self.panel = self._panel()
        self.folder.write_png("renders/target_grid.png", grid(self.target_np))
        for i, t in enumerate(self.target_np):
            self.folder.write_png(f"renders/target_{i:03d}.png", t, "target_renders")
        if c.mode == "shape":
            from .shape import ShapeParameters
            v, f = self._start_mesh()
            self.folder.write_mesh("meshes/target.ply", spec.vertices, spec.faces, "target_mesh")
            self.folder.write_mesh("meshes/start.ply", v, f)
            self.scene = spec.load(vertices=v, faces=f)
            self.params = mi.traverse(self.scene)
            self.P = ShapeParameters(mi, self.params, v, f, c, self.log)
        else:
            from .material import MaterialParameters
            self.P = MaterialParameters.create(mi, spec, c, self.folder, self.log)
            self.scene, self.params = self.P.scene, self.P.params
        # same guiding, no per-step compiles or 1.2 GB buffers; each view's octree kept guiding_every passes (render/guiding.py)
        self.guiding = steady_guiding(self.scene.integrator(), every=c.guiding_every)

    @property
    def panel_models(self) -> list:
        from ..evidence import DEFAULT_MODELS
        return list(self.cfg.panel_models if self.cfg.panel_models is not None else DEFAULT_MODELS)

    def _panel(self):
        """The cross-model panel: in pixel-objective runs the research code's baseline, every logged step."""
        c = self.cfg
        if c.panel_every < 0 or not c.evidence or (c.model not in ("mae", "dual_buffer") and c.panel_every == 0):
            return None
        from ..evidence import Panel
        panel = Panel(self.panel_models, weights=c.weights,
                      weights_dir=c.weights_dir, preprocess=c.preprocess, seed=c.seed, log=self.log)
        self.panel_built = panel  # reused at the end of the run (even empty: no second attempt, no second message)
        if not panel.objectives:
            return None
        panel.set_targets(self.target_np)
        return panel

    # -- the loop --------------------------------------------------------------------------------------------------
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
                    reg = reg * getattr(obj, "metamer_weight", 1.0)
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
        with dr.suspend_grad():
            self.P.apply()
            images, sims, losses = [], [], []
            n = len(self.sensors)
            for i, s in enumerate(self.sensors):
                img = to_ldr(self.mi.render(self.scene, self.params, sensor=s, spp=spp or self.cfg.spp,
                                            seed=render_seed(EVALUATE, i, self.cfg.seed)))
                img2 = to_ldr(self.mi.render(self.scene, self.params, sensor=s, spp=spp or self.cfg.spp,
                                             seed=render_seed(EVALUATE, n + i, self.cfg.seed))) \
                    if self.objective.renders_per_view == 2 else None
                losses.append(float(_flat(self.objective.loss(img, self.target_features[i], img2))[0]))
                sims.append(self.objective.similarity(self.target_features[i]))
                images.append(np.asarray(img))
        return images, sims, float(np.mean(losses))

    # -- around the loop ---------------------------------------------------------------------------------------------
    def execute(self, callback=None, should_stop=None, progress=False) -> RunResult:
        from . import checkpoint
        c = self.cfg
        if self.resume_from is None and not checkpoint.resumable(self.folder.path):
            self.folder.write_json("config.json", c.to_dict())
            self._save_inputs()
        else:
            self._reopen()
        self.write_report()
        reraise = None
        try:
            self._setup()
            self.write_report()
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
                return self._finished_result()
            self.status = "failed"
            self.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            try:
                (self.folder.path / "error.log").write_text(traceback.format_exc())
            except OSError:
                pass
            raise InternalError(f"internal error ({self.error}); details in {self.folder.path / 'error.log'}") from exc
        finally:
            if not self._finished:
                self._finish()
        if reraise is not None:
            raise reraise
        return RunResult(self.folder.path, self.status, self.report, *self._final_mesh())

    def _cancelled(self):
        self.status = "cancelled"
        self._write_report_quietly()  # first, so that a second signal or a kill cannot leave it `running`
        self.log(f"cancelled: everything written so far is in {self.folder.path}; continue with "
                 f"`mrd optimize --resume {self.folder.path}`")

    def _finished_result(self) -> RunResult:
        self._finish()
        return RunResult(self.folder.path, self.status, self.report, *self._final_mesh())

    def _save_inputs(self):
        """What a resume needs besides the checkpoint: the target as loaded, and the caller's start mesh."""
        from . import checkpoint
        from ..scene.io import save_spec
        (self.folder.path / checkpoint.DIR).mkdir(exist_ok=True)
        integrator, self.spec.integrator = self.spec.integrator, None
        try:
            save_spec(self.spec, self.folder.path / checkpoint.DIR / "target.npz")
        except (TypeError, ValueError):  # Mitsuba objects in the scene's extras: no scene file can hold them
            if not self.target_from_config:
                self.log("note: this target holds Mitsuba objects a scene file cannot store: the run cannot be "
                         "resumed with --resume")
                return
            (self.folder.path / checkpoint.DIR / checkpoint.FROM_CONFIG).write_text(self.cfg.scene)
        finally:
            self.spec.integrator = integrator
        checkpoint.save_start(self.folder.path, self.start)

    def _reopen(self):
        """A resumed run: the report's history and files as the checkpoint recorded them."""
        counters = self.resume_from[1] if self.resume_from else {}
        old = _read_json(self.folder.path / "report.json")
        self.folder.started = old.get("started", self.folder.started)
        self.resumed = list(old.get("resumed", [])) + [{"from_step": counters.get("epoch", -1) + 1,
                                                        "at": time.time()}]
        self.folder.write_json("config.json", self.cfg.to_dict())

    def _write_report_quietly(self):
        """The report, whatever else failed. On a full disk the atomic write has no room for a second copy: the
        short form (status, error, steps) then overwrites the old report in place, which frees its space first."""
        try:
            self.write_report()
        except Exception:
            import json
            short = {"version": REPORT_VERSION, "status": self.status, "error": self.error,
                     "note": "short report: the full one could not be written", "steps": self.steps}
            try:
                (self.folder.path / "report.json").write_text(json.dumps(short, default=str))
            except Exception:
                pass

    def _final_mesh(self):
        if self.cfg.mode == "shape" and hasattr(self, "P"):
            st = self.final_state
            return st["vertices"], st["faces"]
        return None, None

    def _begin(self) -> int:
        """The start evaluation, or the state of the checkpoint a resumed run continues from; the first epoch."""
        from ..scene.meshes import chamfer
        self.best, self.bad = math.inf, 0
        if self.resume_from is not None:
            return self._restore_checkpoint(*self.resume_from)
        images, sims, loss0 = self.evaluate()
        self.start_eval = {"loss": loss0, "similarity": float(np.mean(sims)), "per_view": sims}
        if self.cfg.mode == "shape":
            v, f = self.P.state()["vertices"], self.P.faces
            self.start_eval.update(chamfer(v, f, self.spec.vertices, self.spec.faces))
        self.best_state = self.P.state()
        return 0

    def _checkpoint(self, epoch: int):
        from . import checkpoint
        with self.profile("checkpoint"):
            arrays = {**self.P.checkpoint(), **checkpoint.with_prefix("best_", self.best_state)}
            checkpoint.save(self.folder.path, arrays, {
                "epoch": epoch, "best": self.best, "bad": self.bad, "steps": self.steps,
                "start_eval": self.start_eval, "files": self.folder.files, "started": self.folder.started})

    def _restore_checkpoint(self, arrays: dict, counters: dict) -> int:
        from . import checkpoint
        self.P.load_checkpoint(arrays)
        self.best_state = checkpoint.take_prefix("best_", arrays)
        self.best, self.bad = counters["best"], counters["bad"]
        self.steps, self.start_eval = counters["steps"], counters["start_eval"]
        self.folder.files = counters["files"]
        epoch = int(counters["epoch"])
        self.log(f"resuming after epoch {epoch} of {self.cfg.epochs} from {self.folder.path}")
        return epoch + 1

    def _loop(self, callback, should_stop, progress):
        c = self.cfg
        first = self._begin()
        bar = _progress(c.epochs) if progress else None
        if bar is not None and first:
            bar.update(first)
        self.final_state = self.P.state()
        self.status = "running"
        for epoch in range(first, c.epochs):
            if should_stop is not None and should_stop():
                raise Cancelled()
            t0 = time.perf_counter()
            try:
                loss, sim, images = self.epoch(epoch)
            except MRDError:
                raise
            except Exception:
                if not self.P.is_finite():  # Mitsuba fails on NaN geometry before our end-of-epoch check
                    loss = math.nan
                else:
                    raise
            state = self.P.state()
            if not math.isfinite(loss) or not all(np.isfinite(v).all() for v in state.values()):
                raise MRDError(f"the loss or the parameters became NaN/inf at epoch {epoch}: lower --lr "
                               f"(now {self.P.lr:g}) or raise -l; the last good state is in {self.folder.path}")
            self.final_state = state
            with self.profile("remesh"):
                remeshed = self.P.end_of_epoch(epoch)
            if remeshed and getattr(self, "guiding", None):
                self.guiding.forget()       # new topology: the octrees' sample space is another one
            seconds = time.perf_counter() - t0
            if loss < self.best - c.min_delta:
                self.best, self.bad, self.best_state = loss, 0, state
            else:
                self.bad += 1
            with self.profile("log"):
                self._log_step(epoch, loss, sim, seconds, remeshed, images, state, callback)
            if bar is not None:
                bar.set_postfix(loss=f"{loss:.4g}", sim=f"{sim:.4f}", s_per_step=f"{seconds:.2f}")
                bar.update(1)
            if c.patience and self.bad >= c.patience:
                self.log(f"early stop after epoch {epoch}: no improvement of the loss for {c.patience} epochs; "
                         f"keeping the best state (loss {self.best:.4g})")
                self.P.restore(self.best_state)
                self.final_state = self.best_state
                self.status = "stopped_early"
                break
        if bar is not None:
            bar.close()
        if self.status == "running":
            self.status = "done"
        self.final_state = self.P.state()

    def _log_step(self, epoch, loss, sim, seconds, remeshed, images, state, callback):
        c = self.cfg
        entry = {"step": epoch, "loss": loss, "similarity": sim, "seconds": seconds}
        if c.mode == "shape":
            entry.update(n_vertices=int(len(state["vertices"])), lr=self.P.lr, remeshed=remeshed)
        info = getattr(self.objective, "step_info", lambda: {})() or {}
        if info:
            entry["info"] = info
        entry.update(self.P.log_values() if hasattr(self.P, "log_values") else {})
        files = {}
        last = epoch == c.epochs - 1
        np_images = None
        if self.panel is not None and (epoch % max(1, panel_cadence(c)) == 0 or last):
            from ..evidence import step_panel
            np_images = [np.asarray(im) for im in images]
            with self.profile("panel"):
                entry["panel"] = step_panel(self.panel, np_images)
            # which steps were scored (the others have no "panel" entry: no score, not a zero)
            self.extra.setdefault("panel_steps", {"every": panel_cadence(c), "steps": []})["steps"].append(epoch)
        if epoch % c.render_every == 0 or last:
            np_images = np_images or [np.asarray(im) for im in images]
            files["render"] = self.folder.rel(self.folder.write_png(f"renders/step_{epoch:06d}.png", grid(np_images),
                                                                    "step_renders"))
        if c.mode == "shape" and (epoch % c.mesh_every == 0 or remeshed or last):
            files["mesh"] = self.folder.rel(self.folder.write_mesh(f"meshes/step_{epoch:06d}.ply",
                                                                   state["vertices"], state["faces"]))
        if c.forward and (epoch % c.render_every == 0 or last):
            with self.profile("forward"):
                files.update(self._forward_images(epoch))
        if hasattr(self.P, "write_outputs") and (epoch % c.render_every == 0 or last):
            files.update(self.P.write_outputs(self.folder, f"step_{epoch:06d}"))
        if files:
            entry["files"] = files
        if epoch % c.log_every == 0 or last or remeshed:
            self.steps.append(entry)
            self.write_report()
            self._checkpoint(epoch)  # right after the report, so that both tell the same history
        step = StepResult(epoch, loss, sim, seconds, remeshed, files=files, info=info)
        if c.mode == "shape":
            step.vertices, step.faces = state["vertices"], state["faces"]
        else:
            step.textures, step.material = self.P.values()
        if callback is not None:
            from ..render.tonemap import to_uint8
            step.render = to_uint8(np.asarray(images[0]))
            callback(step)
        return step

    def _finish(self):
        """Final renders, meshes, metrics, plots and report; runs after success, failure and cancellation."""
        self._finished = True
        c = self.cfg
        from ..peak_memory import loop_end, run_end
        memory = loop_end(reset=getattr(self, "reset_peak_after_loop", False))  # mrd bench step resets it
        try:
            if hasattr(self, "P") and hasattr(self, "start_eval"):
                if c.mode == "shape":
                    from ..scene.meshes import chamfer
                    st = self.final_state
                    if self.status in ("cancelled", "failed"):
                        self.P.restore(st)  # the final renders show the last good state
                    self.folder.write_mesh("meshes/final.ply", st["vertices"], st["faces"])
                    end = chamfer(st["vertices"], st["faces"], self.spec.vertices, self.spec.faces)
                    self.extra["chamfer"] = {"start": self.start_eval["chamfer"], "end": end["chamfer"]}
                    self.extra["normal_consistency"] = {"start": self.start_eval["normal_consistency"],
                                                        "end": end["normal_consistency"]}
                else:
                    self.folder.files.update(self.P.write_outputs(self.folder, "final"))
                    self.extra.update(self.P.final_metrics())
                images, sims, loss = self.evaluate()
                self.final_images = images
                self.folder.write_png("renders/final_grid.png", grid(images))
                for i, im in enumerate(images):
                    self.folder.write_png(f"renders/final_{i:03d}.png", im, "final_renders")
                self.extra["similarity"] = {"start": self.start_eval["similarity"], "end": float(np.mean(sims)),
                                            "per_view_end": sims}
                self.extra["loss"] = {"start": self.start_eval["loss"], "end": loss}
                self._end_of_run_evidence()
        except Cancelled:  # a signal while finishing: keep what is written, say what is missing
            self.extra["finish_note"] = "cancelled during the end-of-run work: final renders or evidence incomplete"
            self.log(f"warning: {self.extra['finish_note']}")
        except Exception as exc:  # finishing must never hide the run's own outcome
            self.log(f"warning: could not write the final results ({type(exc).__name__}: {exc})")
            try:
                (self.folder.path / "finish-error.log").write_text(traceback.format_exc())
            except OSError:
                pass
        finally:
            self._plots()
            self.extra["memory"] = run_end(memory)
            self._write_report_quietly()
            try:
                from ..evidence import write_report_html
                write_report_html(self.folder.path)
            except Exception as exc:
                self.log(f"warning: could not write report.html ({type(exc).__name__}: {exc})")

    def _forward_images(self, epoch: int) -> dict:
        """Forward-gradient images of view 0 along the research direction (see render/gradient_images.py)."""
        from ..render.gradient_images import derivative_image, visualize
        keys = ["shape.vertex_positions"] if self.cfg.mode == "shape" else list(getattr(self.P, "keys", []))
        if not keys:
            return {}
        g = derivative_image(self.mi, self.scene, self.params, keys, self.sensors[0], seed=self.cfg.seed)
        self.P.apply()
        out = {}
        for name, im in visualize(g).items():
            p = self.folder.write_png(f"forward/{name}_{epoch:06d}.png", im, f"forward_{name}")
            out[f"forward_{name}"] = self.folder.rel(p)
        return out

    def _render_all(self, scene, sensors, spp=None, params=None, stream=TURNTABLE, first=0):
        import drjit as dr
        from ..render.tonemap import to_ldr
        with dr.suspend_grad():
            return [np.asarray(to_ldr(self.mi.render(scene, params, sensor=s, spp=spp or self.cfg.spp,
                                                     seed=render_seed(stream, first + i, self.cfg.seed))))
                    for i, s in enumerate(sensors)]

    def _masks(self, spec, sensors, vertices=None, faces=None):
        """Object masks from Mitsuba's depth AOV (depth > 0 where a ray hits the object)."""
        import copy
        m = copy.copy(spec)
        m.integrator = {"type": "aov", "aovs": "dd:depth"}
        m.extras = {k: v for k, v in spec.extras.items() if "light" in k or "emitter" in k}
        m.lights = [x for x in spec.lights if not x.is_visible_shape()]  # an area lamp is no part of the object
        scene = m.load(vertices=vertices, faces=faces) if vertices is not None else m.load()
        return [np.asarray(self.mi.render(scene, sensor=s, spp=1))[..., -1] > 0 for s in sensors]

    def _turntable(self, frames: int):
        """Result and target seen from a ring of cameras around +Z, as GIFs beside the report."""
        import copy

        from ..scene.cameras import CameraRig, look_at
        center, radius = self.spec.bounds()
        dist = self.spec.cameras.distance or 2.8 * radius
        mats = []
        for k in range(frames):
            a = 2 * np.pi * k / frames
            eye = center + dist * np.array([np.cos(a) * np.cos(0.35), np.sin(a) * np.cos(0.35), np.sin(0.35)])
            mats.append(look_at(eye, center))
        rig = CameraRig(frames, self.spec.cameras.fov, self.cfg.width, self.cfg.height, matrices=mats)
        spec = copy.copy(self.spec)
        sensors = spec.sensors(rig, spp=self.cfg.spp)
        import imageio.v3 as iio

        from ..render.tonemap import to_uint8
        for name, scene, params in (("turntable", self.scene, self.params), ("turntable_target", self.spec.load(), None)):
            imgs = self._render_all(scene, sensors, params=params, first=0 if params is not None else frames)
            iio.imwrite(self.folder.path / "renders" / f"{name}.gif", np.stack([to_uint8(i) for i in imgs]),
                        extension=".gif", duration=120, loop=0)

    def _end_of_run_evidence(self):
        from ..evidence.for_run import end_of_run_for
        ev = end_of_run_for(self)  # turntable, control and held-out renders, the verdict (evidence/for_run.py)
        if ev is not None:
            self.extra["evidence"] = ev

    def _plots(self):
        from ..outputs.figures import curves_png, optimization_gif
        try:
            if self.steps:
                curves_png(self.folder.path / "curves.png", self.steps)
                self.folder.files["curves"] = "curves.png"
            frames = self.folder.files.get("step_renders", [])
            if frames:
                optimization_gif(self.folder.path / "optimization.gif", [self.folder.path / f for f in frames])
                self.folder.files["video"] = "optimization.gif"
        except Exception as exc:
            self.log(f"warning: could not write plots ({type(exc).__name__}: {exc})")

    @property
    def report(self) -> dict:
        c = self.cfg
        try:
            from ..render.variant import variant_name
            variant = variant_name() if hasattr(self, "mi") else None
        except Exception:
            variant = None
        obj = getattr(self, "objective", None)
        r = {"version": REPORT_VERSION, "status": self.status, "error": self.error, "mode": c.mode,
             "scene": c.scene if self.spec is None else self.spec.name, "envmap": self.spec.environment.name,
             "model": c.model, "weights": obj.weights_used if obj else c.weights, "preprocess": c.preprocess,
             "variant": variant, "versions": versions(), "integrator": {"profile": c.integrator,
                                                                        **self.spec.integrator_dict(),
                                                                        "spp_grad": getattr(self, "spp_grad", c.spp),
                                                                        **(self.guiding.describe()
                                                                           if getattr(self, "guiding", None) else {})},
             "objective": obj.describe() if obj else {"name": c.model}, "config": c.to_dict(),
             "started": self.folder.started, "seconds": time.time() - self.folder.started,
             "steps": self.steps, "profile": self.profile.summary(), "files": self.folder.files}
        if self.resumed:
            r["resumed"] = self.resumed
        r.update(self.extra)
        return r

    def write_report(self):
        self.folder.write_json("report.json", self.report)


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


def _progress(total):
    from tqdm import tqdm
    return tqdm(total=total, unit="step", dynamic_ncols=True)
