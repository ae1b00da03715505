"""One optimization run as Blender sees it: export the target, start the worker, apply its steps, finish.

Interactive sessions drain the worker from a `bpy.app.timers` callback (`Job.tick`, a few milliseconds of main-thread
time per step); background mode (`blender -b`) blocks in `Job.run_blocking` until the run ends. The .blend is only
changed by results: the result object appears with the first step, and nothing is created when a run fails before.

Besides the Job class this module holds the one-current-job state (CURRENT, LAST, the timer, launch, shutdown) that
the operators, the panel and the tests share, which is why it is a little over 400 lines. The run folder and its
inputs are run_folder.py's, the text a run shows progress.py's, the status bar and reports ui.py's.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import bpy
import numpy as np

from . import apply, client, export, preferences, properties, ui
from .progress import JobText
from .run_folder import clean_name, new_run_folder, output_root, resumable_config, write_inputs

CURRENT = None   # the running Job (one at a time)
LAST = None      # the last finished Job (the panel shows its outcome)
TICK = 0.1       # seconds between timer calls while a run goes
CANCEL_UI_SECONDS = 1.0   # after Cancel, the UI waits this long for the worker's last step, then lets go of it
# Callables (job, step event, live, main-thread seconds the step took) run after each step event: instrumentation
# (scripts/bench_addon.py `StepTimes` records timings with one); the add-on itself installs none.
STEP_HOOKS: list = []


class JobError(Exception):
    """A run could not start: one line saying what to do. Nothing in the .blend was changed."""


def resolve_target(context, settings):
    obj = settings.target or getattr(context, "active_object", None)
    if obj is None:
        sel = [o for o in getattr(context, "selected_objects", []) or []]
        obj = sel[0] if sel else None
    if obj is None:
        raise JobError("nothing is selected: select the mesh to make a metamer of (or set Target in the MRD panel)")
    problem = export.mesh_problem(obj)
    if problem:
        raise JobError(problem)
    return obj


def _export(context, settings, target, size: int):
    """The target's Export and the start mesh (None: the icosphere). Raises JobError."""
    errors = client.backend().errors
    try:
        ex = export.export_target(target, context, views=settings.views, width=size, height=size)
        start = None
        if settings.mode == "shape" and settings.start == "object":
            if settings.start_object is None:
                raise export.ExportError("Start is 'Object' but no start object is set: pick a mesh or use the "
                                         "icosphere")
            start = export.start_mesh(settings.start_object)
    except (export.ExportError, errors.MRDError) as exc:
        raise JobError(str(exc)) from None
    return ex, start


class Job(JobText):
    """One run: started (or resumed) from Blender, its worker's events applied, finished. The text it shows is
    JobText's (progress.py)."""


    def __init__(self):
        self.status = "starting"      # starting | running | cancelling | done | stopped_early | cancelled | failed
        self.message = ""
        self.notes: list[str] = []
        self.warnings: list[str] = []
        self.step = None
        self.epochs = 0
        self.loss = None
        self.similarity = None
        self.eta = None
        self.elapsed = 0.0
        self.last_log = ""
        self.run_dir: Path | None = None
        self.worker: client.Worker | None = None
        self.writer: apply.ResultWriter | None = None
        self.target_name = ""
        self.mode = "shape"
        self.start_mesh = None
        self.elapsed_list: list[float] = []   # the worker's clock at each step (time_left reads the intervals)
        self.done_event: dict | None = None
        self._keep_every = 10
        self.cancel_time = None               # time.monotonic() of the Cancel press
        self.finish_time = None               # when the last step (or a cancel) arrived: the finishing phase
        self.resumed = False
        self.phase: dict | None = None        # the backend's own phase event (e.g. evidence), if it sends one
        self.output_root: Path | None = None  # the Output folder every run folder must lie in

    # -- start --------------------------------------------------------------------------------------------
    @classmethod
    def start(cls, context, settings=None, python: str | None = None) -> "Job":
        """Exports the target, writes the run's inputs and starts the worker. Raises JobError (nothing changed)."""
        settings = settings or context.scene.mrd
        job = cls()
        target = resolve_target(context, settings)
        job.target_name, job.mode = target.name, settings.mode
        python = python or preferences.backend_python(context)
        problem = client.python_problem(python)
        if problem:
            raise JobError(problem)
        run_dir = new_run_folder(output_root(settings), f"{clean_name(target.name)}-{settings.mode}-{settings.model}")
        p = preferences.prefs(context)
        try:
            cfg = properties.run_config(settings, str(run_dir), bpy.path.abspath(p.weights_dir)
                                        if p is not None and p.weights_dir else None)
        except ValueError as exc:
            raise JobError(str(exc)) from None
        size = cfg["width"]
        ex, start = _export(context, settings, target, size)
        job.notes, job.warnings = ex.notes, ex.warnings
        if settings.mode == "material":
            tex = properties.texture_size_of(ex.spec.material) if settings.texture_source == "target" else None
            if tex is not None:
                cfg["texture_size"] = tex
            job.notes.append(f"material textures of {cfg['texture_size'][0]}x{cfg['texture_size'][1]} "
                             + ("(the target's)" if tex is not None else "(Texture size)"))
        try:
            inputs = write_inputs(run_dir, ex.spec, cfg, ex.warnings + ex.notes, start)
        except OSError as exc:
            raise JobError(f"cannot write the run folder {run_dir}: {exc.strerror or exc}; choose another Output "
                           "folder") from None
        job.run_dir, job.epochs, job.start_mesh = run_dir, int(cfg["epochs"]), start
        job.output_root = output_root(settings)
        job._keep_every = settings.keep_every
        job.worker = client.Worker(python, run_dir, inputs / "scene.npz", inputs / "config.json",
                                   inputs / "start.npz" if start is not None else None,
                                   env=preferences.worker_env_extra(context), root=output_root(settings))
        try:
            job.worker.start()
        except RuntimeError as exc:
            raise JobError(str(exc)) from None
        job.status = "running"
        job._print(f"started: {target.name} ({settings.mode}, {settings.model}, {cfg['views']} views "
                   f"{size}x{size}, {cfg['spp']} spp, {cfg['epochs']} epochs) -> {run_dir}")
        for w in job.warnings:
            job._print("warning: " + w)
        for n in job.notes:
            job._print("note: " + n)
        return job

    @classmethod
    def resume(cls, context, run_dir, python: str | None = None) -> "Job":
        """Resumes a cancelled run in its own folder (`python -m mrd_backend.worker --resume RUN_DIR`): the same
        result object follows it. Raises JobError when the folder is not a resumable run."""
        try:   # a path from the .blend (the result's mrd_run): only a folder inside the Output folder
            run_dir = client.confined_run_folder(run_dir, output_root(context.scene.mrd))
        except RuntimeError as exc:
            raise JobError(str(exc)) from None
        try:
            cfg = resumable_config(run_dir)
        except ValueError as exc:
            raise JobError(str(exc)) from None
        result = next((o for o in bpy.data.objects if o.get("mrd_role") == "result" and o.get("mrd_run")
                       and Path(str(o["mrd_run"])).resolve() == run_dir), None)
        job = cls()
        job.run_dir, job.resumed = run_dir, True
        job.output_root = output_root(context.scene.mrd)
        job.mode = cfg.get("mode", "shape")
        job.epochs = int(cfg.get("epochs", 0))
        job.target_name = str(result.get("mrd_target", "")) if result is not None else ""
        python = python or preferences.backend_python(context)
        problem = client.python_problem(python)
        if problem:
            raise JobError(problem)
        if result is not None and bpy.data.objects.get(job.target_name) is not None:
            job.writer = apply.ResultWriter.adopt(result)
        job._keep_every = job.writer.keep_every if job.writer is not None else 10
        job.worker = client.Worker(python, run_dir, env=preferences.worker_env_extra(context), resume=True,
                                   root=output_root(context.scene.mrd))
        try:
            job.worker.start()
        except RuntimeError as exc:
            raise JobError(str(exc)) from None
        job.status = "running"
        job._print(f"resumed: {run_dir}")
        return job

    # -- events -------------------------------------------------------------------------------------------
    def _writer(self):
        if self.writer is None:
            target = bpy.data.objects.get(self.target_name)
            if target is None:
                return None
            self.writer = apply.ResultWriter(target, self.mode, self.run_dir, self._keep_every)
            self.writer.begin(self.start_mesh)
        elif not self.writer.intact():  # undone (or deleted) while running: rebuild it from the step files
            if bpy.data.objects.get(self.target_name) is not None:
                self.writer.restore(self.start_mesh)
        return self.writer

    def _arrays(self, ev):
        rel = ev.get("data")
        if not rel:
            return {}
        try:
            with np.load(self.run_dir / rel, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            self.last_log = f"could not read {rel}: {exc}"
            return {}

    def handle(self, events: list[dict]):
        """Applies a batch of events. Only the newest step updates the live result; every kept step goes to the
        history."""
        steps = [e for e in events if e.get("event") == "step"]
        newest = steps[-1] if steps else None
        for ev in events:
            kind = ev.get("event")
            if kind == "hello":
                self.epochs = int(ev.get("epochs") or self.epochs)
                if not self._follow_out(ev.get("out")):
                    break
            elif kind == "log":
                self.last_log = str(ev.get("message", ""))
                if bpy.app.background:
                    self._print(self.last_log)
            elif kind == "step":
                self._step(ev, live=ev is newest)
            elif kind == "phase":   # optional: {"event": "phase", "name": "evidence", "done": i, "total": n}
                self.phase = ev
            elif kind == "done":
                self.done_event = ev
                self._finish(ev.get("status", "done"), "")
            elif kind == "error":
                self._finish("failed", str(ev.get("message", "the backend failed")))

    def _follow_out(self, out) -> bool:
        """The worker may write into another folder than the one asked for (the backend keeps an earlier run's
        folder and picks a fresh one): follow it, if it is inside the Output folder; else stop the run."""
        if not out or self.run_dir is None or Path(out).resolve() == Path(self.run_dir).resolve():
            return True
        try:
            new = client.confined_run_folder(out, self.output_root or self.run_dir.parent)
        except RuntimeError as exc:
            if self.worker is not None:
                self.worker.terminate(grace=1)
            self._finish("failed", f"the backend chose another run folder: {exc}")
            return False
        self.run_dir = new
        if self.writer is not None:
            self.writer.run_dir = str(new)
        return True

    def _step(self, ev, live):
        t0 = time.perf_counter()
        self.step = int(ev.get("step", 0))
        self.epochs = int(ev.get("epochs") or self.epochs)
        self.loss, self.similarity = ev.get("loss"), ev.get("similarity")
        self.eta, self.elapsed = ev.get("eta"), ev.get("elapsed") or 0.0
        writer = self._writer()
        last = self.step >= self.epochs - 1
        keep = writer is not None and writer.keep(self.step, last, bool(ev.get("remeshed")))
        carries_faces = ev.get("faces") is not None and ev.get("faces") == ev.get("data")
        if writer is not None and (live or keep or carries_faces):
            try:
                writer.apply_step(ev, self._arrays(ev), live=live, keep=keep)
            except Exception as exc:  # a display problem must not stop the run: say it once, keep going
                msg = f"could not show step {self.step} in Blender ({type(exc).__name__}: {exc})"
                if not any(w.startswith("could not show step") for w in self.warnings):
                    self.warnings.append(msg)
                    self._print("warning: " + msg, error=True)
        for hook in STEP_HOOKS:
            hook(self, ev, live, time.perf_counter() - t0)
        self.elapsed_list.append(float(self.elapsed or 0.0))
        if last and self.finish_time is None:
            self.finish_time = time.monotonic()
        if bpy.app.background:
            self._print(self.progress_text())

    def _finish(self, status, message):
        if "worker log" in message and self.worker is not None:
            message = message.replace("the worker log", f"the worker log ({self.worker.log_path})")
        self.status, self.message = status, message
        if self.writer is not None and self.writer.obj() is not None:
            self.writer.finish(status, message)
        if self.worker is not None:  # the worker exits by itself now; never wait for it on the UI thread
            self.worker.close(wait=2.0 if bpy.app.background else 0.0)
        if not (bpy.app.background and status == "failed"):  # a background failure: the operator reports it
            self._print(self.summary(), error=status == "failed")

    # -- driving ------------------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.status in ("starting", "running", "cancelling")

    def tick(self):
        """Timer callback (interactive): drains the stream without blocking. Returns the next interval or None."""
        if not self.active or self.worker is None:
            return None
        try:
            events = self.worker.poll()
            if events:
                self.handle(events)
                ui.update(self)
        except Exception as exc:  # never let a timer die silently with the worker still running
            self.worker.terminate(grace=2)
            self._finish("failed", f"the add-on failed while applying a step ({type(exc).__name__}: {exc})")
            ui.update(self)
        if self.status == "cancelling" and self.cancel_time is not None \
                and time.monotonic() - self.cancel_time > CANCEL_UI_SECONDS:
            self.let_go("cancelled", "cancelled; the backend finishes writing its files in the background")
            ui.update(self)
        if not self.active:
            _on_finished(self)
            return None
        return TICK

    def let_go(self, status, message=""):
        """The UI stops waiting for the worker (it is left to finish its files on its own; they stay in the run
        folder) and the run ends here as `status`. The steps applied so far stay."""
        if self.worker is not None:
            self.worker.detach()
            _drain_later(self.worker)
        self.status, self.message = status, message
        if self.writer is not None and self.writer.obj() is not None:
            self.writer.finish(status, message)
        self._print(self.summary())

    def run_blocking(self):
        """Background mode: applies events until the run ends. Ctrl+C cancels after the current step."""
        try:
            for ev in self.worker.events():
                self.handle([ev])
        except KeyboardInterrupt:
            self._print("interrupted: stopping after the current step ...")
            self.cancel()
            for ev in self.worker.events():
                self.handle([ev])
        except Exception as exc:
            self.worker.terminate(grace=2)
            self._finish("failed", f"the add-on failed while applying a step ({type(exc).__name__}: {exc})")
        if self.active:
            self._finish("failed", "the worker stream ended without a result")
        _on_finished(self)

    def cancel(self):
        if self.worker is None or not self.active:
            return
        if self.status == "cancelling":  # asked twice: stop the process now
            self.worker.terminate(grace=0.5)
            return
        self.status = "cancelling"
        self.cancel_time = time.monotonic()
        if self.finish_time is None:
            self.finish_time = self.cancel_time
        self.worker.cancel()

    def shutdown(self):
        """Blender exits, the add-on is disabled or another file is opened: stop the worker (files stay)."""
        if self.worker is not None:
            self.worker.terminate(grace=3)
        if self.active:
            self.status, self.message = "cancelled", "stopped (Blender closed the file or the add-on)"

    def _print(self, text, error=False):
        print(text, file=sys.stderr if error else sys.stdout, flush=True)


def _on_finished(job):
    global CURRENT, LAST
    if CURRENT is job:
        CURRENT = None
    LAST = job
    if bpy.app.background:
        return
    ui.update(job)
    level = "ERROR" if job.status == "failed" else "INFO"
    ui.report(level, job.summary())
    if job.writer is not None:
        ui.undo_push(f"MRD metamer of {job.target_name}")


def _timer():
    job = CURRENT
    if job is None:
        return None
    return job.tick()


def launch(context, settings=None, python=None, resume_dir=None) -> Job:
    """Starts a run (or resumes the cancelled run in `resume_dir`); interactive: returns at once (a timer applies
    the steps); background: returns when done."""
    global CURRENT
    if CURRENT is not None and CURRENT.active:
        raise JobError("a run is already going: cancel it first (MRD panel > Cancel)")
    job = Job.resume(context, resume_dir, python) if resume_dir is not None else Job.start(context, settings, python)
    CURRENT = job
    if bpy.app.background:
        job.run_blocking()
    else:
        bpy.app.timers.register(_timer, first_interval=TICK)
        ui.update(job)
    return job


def stop_worker():
    """At interpreter exit: tells the worker (stop after the step; end of stdin) and leaves it to finish writing,
    so its report says `cancelled`. bpy may already be torn down, so it is not touched."""
    job = CURRENT
    if job is not None and job.worker is not None and job.active:
        job.worker.detach()


_DRAINING: list = []


def _drain_later(worker):
    """Closes a let-go worker's handles once it has ended (a timer; nothing waits for it)."""
    _DRAINING.append(worker)
    if bpy.app.background or bpy.app.timers.is_registered(_drain):
        return
    bpy.app.timers.register(_drain, first_interval=1.0, persistent=True)


def _drain():
    for w in list(_DRAINING):
        w.poll()
        if not w.running:
            w.close(wait=0.0)
            _DRAINING.remove(w)
    return 1.0 if _DRAINING else None


def shutdown():
    global CURRENT
    if bpy.app.timers.is_registered(_timer):
        bpy.app.timers.unregister(_timer)
    if bpy.app.timers.is_registered(_drain):
        bpy.app.timers.unregister(_drain)
    for w in _DRAINING:   # let-go workers finish on their own; only our handles are closed
        w.close(wait=0.0)
    _DRAINING.clear()
    if CURRENT is not None:
        CURRENT.shutdown()
        CURRENT = None
    for win in ui.windows():
        ui.status_text(win, None)



def resumable_run(context) -> Path | None:
    """The run folder a Resume would continue: the active result's run if it was cancelled, else the last run's."""
    obj = getattr(context, "active_object", None)
    if obj is not None and obj.get("mrd_role") == "result" and obj.get("mrd_run"):
        return Path(obj["mrd_run"]) if obj.get("mrd_status") == "cancelled" else None
    last = LAST
    if last is not None and last.status == "cancelled" and last.run_dir is not None:
        return last.run_dir
    return None
