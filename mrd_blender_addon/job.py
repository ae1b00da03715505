"""One optimization run as Blender sees it: export the target, start the worker, apply its steps, finish.

Interactive sessions drain the worker from a `bpy.app.timers` callback (`Job.tick`, a few milliseconds of main-thread
time per step); background mode (`blender -b`) blocks in `Job.run_blocking` until the run ends. The .blend is only
changed by results: the result object appears with the first step, and nothing is created when a run fails before.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import bpy
import numpy as np

from . import apply, client, export, preferences, properties

CURRENT = None   # the running Job (one at a time)
LAST = None      # the last finished Job (the panel shows its outcome)
TICK = 0.1       # seconds between timer calls while a run goes
CANCEL_UI_SECONDS = 1.0   # after Cancel, the UI waits this long for the worker's last step, then lets go of it
WARMUP_STEPS = 2          # steps left out of the time-left estimate (start-up, kernel compilation)


class JobError(Exception):
    """A run could not start: one line saying what to do. Nothing in the .blend was changed."""


def _clean(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60] or "object"


def output_root(settings) -> Path:
    raw = settings.output_dir or "//mrd_runs"
    if raw.startswith("//") and not bpy.data.filepath:
        return Path(tempfile.gettempdir()) / "mrd_runs"
    return Path(bpy.path.abspath(raw))


def resolve_target(context, settings):
    obj = settings.target or getattr(context, "active_object", None)
    if obj is None:
        sel = [o for o in getattr(context, "selected_objects", []) or []]
        obj = sel[0] if sel else None
    if obj is None:
        raise JobError("nothing is selected: select the mesh to make a metamer of (or set Target in the MRD panel)")
    if obj.type != "MESH":
        raise JobError(f"{obj.name!r} is a {obj.type.lower()} object, not a mesh: select a mesh, or convert it with "
                       "Object > Convert > Mesh")
    return obj


class Job:
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
        self.update_times: list[float] = []   # main-thread seconds per applied update (the benchmark reads them)
        self.latencies: list[float] = []      # seconds from the worker's emit to Blender applying the step
        self.write_times: list[float] = []    # worker seconds spent writing each step's arrays
        self.elapsed_list: list[float] = []   # the worker's clock at each step (intervals = step + overhead)
        self.events_seen = 0
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
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = output_root(settings) / f"{_clean(target.name)}-{settings.mode}-{settings.model}-{stamp}"
        i = 2
        while run_dir.exists():
            run_dir = run_dir.with_name(f"{run_dir.name.split('~')[0]}~{i}")
            i += 1
        p = preferences.prefs(context)
        try:
            cfg = properties.run_config(settings, str(run_dir), bpy.path.abspath(p.weights_dir)
                                        if p is not None and p.weights_dir else None)
        except ValueError as exc:
            raise JobError(str(exc)) from None
        size = cfg["width"]
        errors = client.backend().errors
        try:
            ex = export.export_target(target, context, views=settings.views, width=size, height=size)
            start = None
            if settings.mode == "shape" and settings.start == "object":
                if settings.start_object is None:
                    raise export.ExportError("Start is 'Object' but no start object is set: pick a mesh or use "
                                             "the icosphere")
                start = export.start_mesh(settings.start_object)
        except (export.ExportError, errors.MRDError) as exc:
            raise JobError(str(exc)) from None
        job.notes, job.warnings = ex.notes, ex.warnings
        if settings.mode == "material":
            tex = properties.texture_size_of(ex.spec.material) if settings.texture_source == "target" else None
            if tex is not None:
                cfg["texture_size"] = tex
            job.notes.append(f"material textures of {cfg['texture_size'][0]}x{cfg['texture_size'][1]} "
                             + ("(the target's)" if tex is not None else "(Texture size)"))
        inputs = run_dir / "input"
        try:
            inputs.mkdir(parents=True, exist_ok=True)
            client.backend().scene.io.save_spec(ex.spec, inputs / "scene.npz")
            (inputs / "config.json").write_text(json.dumps(cfg, indent=1))
            (inputs / "notes.txt").write_text("\n".join(ex.warnings + ex.notes) + "\n")
            if start is not None:
                np.savez(inputs / "start.npz", vertices=start[0], faces=start[1])
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
        inputs = run_dir / "input"
        try:
            cfg = json.loads((inputs / "config.json").read_text())
        except (OSError, ValueError):
            raise JobError(f"{run_dir} is not a run folder made by this add-on (no input/config.json): start a "
                           "new run instead") from None
        try:
            status = json.loads((run_dir / "report.json").read_text()).get("status")
        except (OSError, ValueError):
            status = None
        if status in ("done", "stopped_early"):
            raise JobError(f"the run in {run_dir} has ended ({status}): only a cancelled (or crashed) run can be "
                           "resumed")
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
            self.events_seen += 1
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
        if live:
            self.update_times.append(time.perf_counter() - t0)
        if ev.get("sent"):
            self.latencies.append(time.time() - float(ev["sent"]))
        if ev.get("write_seconds") is not None:
            self.write_times.append(float(ev["write_seconds"]))
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
                _ui_update(self)
        except Exception as exc:  # never let a timer die silently with the worker still running
            self.worker.terminate(grace=2)
            self._finish("failed", f"the add-on failed while applying a step ({type(exc).__name__}: {exc})")
            _ui_update(self)
        if self.status == "cancelling" and self.cancel_time is not None \
                and time.monotonic() - self.cancel_time > CANCEL_UI_SECONDS:
            self.let_go("cancelled", "cancelled; the backend finishes writing its files in the background")
            _ui_update(self)
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

    # -- text ---------------------------------------------------------------------------------------------
    def time_left(self) -> float | None:
        """Seconds left, from steady-state steps only: the median of the latest step intervals after the first
        WARMUP_STEPS (start-up and kernel compilation make the first ones many times longer). None until known."""
        t = self.elapsed_list
        if self.step is None or len(t) < WARMUP_STEPS + 2:
            return None
        steady = np.diff(np.asarray(t[WARMUP_STEPS:], np.float64))[-20:]
        steady = steady[steady >= 0]
        if not len(steady):
            return None
        return float(np.median(steady)) * max(0, self.epochs - self.step - 1)

    def phase_text(self) -> str | None:
        """After the last step (or a cancel) the backend renders the result and measures the evidence: a phase of
        its own, with its time so far (and its progress, when the backend sends `phase` events)."""
        if self.finish_time is None or not self.active:
            return None
        spent = _duration(time.monotonic() - self.finish_time)
        if self.phase and self.phase.get("total"):
            return (f"{self.phase.get('name', 'finishing')} {int(self.phase.get('done', 0))}/"
                    f"{int(self.phase['total'])} ({spent})")
        what = "stopping: final files" if self.status == "cancelling" else "finishing: final renders, evidence"
        return f"{what} ({spent})"

    def progress_text(self) -> str:
        if self.step is None:
            return f"MRD: starting the backend ({self.target_name})"
        parts = [f"MRD: step {self.step + 1}/{self.epochs}"]
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4g}")
        if self.similarity is not None:
            parts.append(f"similarity {self.similarity:.3f}")
        phase = self.phase_text()
        if phase:
            parts.append(phase)
        elif self.active:
            left = self.time_left()
            parts.append(f"{_duration(left)} left" if left is not None else "estimating time left")
        return "  ".join(parts)

    def summary(self, files: bool = True) -> str:
        """One line on the outcome; `files=False` leaves out the run folder (the panel names it apart)."""
        where = f" in {self.run_dir}" if self.run_dir and files else ""
        if self.status == "failed":
            return f"MRD failed: {self.message}" + (f" (results so far{where})" if self.step is not None else "")
        result = f"; result: {self.writer.name}" if self.writer is not None else ""
        sim = f", similarity {self.similarity:.3f}" if self.similarity is not None else ""
        n = 0 if self.step is None else self.step + 1
        return f"MRD {self.status}: {n}/{self.epochs} steps{sim}{result}" + (f"; files{where}" if where else "")

    def _print(self, text, error=False):
        print(text, file=sys.stderr if error else sys.stdout, flush=True)


def _duration(s):
    s = int(s or 0)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else (f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s")


# -- UI glue (interactive only) ---------------------------------------------------------------------------
def _windows():
    wm = bpy.context.window_manager
    return list(getattr(wm, "windows", []) or [])


def _status_text(win, text):
    try:
        with bpy.context.temp_override(window=win):
            win.workspace.status_text_set(text)
    except Exception:   # a window closing or without a workspace: the status line is cosmetic
        pass


def _ui_update(job):
    text = job.progress_text() if job.active else None
    for win in _windows():
        _status_text(win, text)
        for area in win.screen.areas:
            if area.type in ("VIEW_3D", "IMAGE_EDITOR", "PROPERTIES"):
                area.tag_redraw()


def _report(level, message):
    for win in _windows()[:1]:
        try:
            with bpy.context.temp_override(window=win):
                bpy.ops.mrd.report("EXEC_DEFAULT", level=level, message=message)
        except Exception:
            pass


def _on_finished(job):
    global CURRENT, LAST
    if CURRENT is job:
        CURRENT = None
    LAST = job
    if bpy.app.background:
        return
    _ui_update(job)
    level = "ERROR" if job.status == "failed" else "INFO"
    _report(level, job.summary())
    if job.writer is not None:
        for win in _windows()[:1]:
            try:
                with bpy.context.temp_override(window=win):
                    bpy.ops.ed.undo_push(message=f"MRD metamer of {job.target_name}")
            except Exception:
                pass


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
        _ui_update(job)
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
    for win in _windows():
        _status_text(win, None)



def resumable_run(context) -> Path | None:
    """The run folder a Resume would continue: the active result's run if it was cancelled, else the last run's."""
    obj = getattr(context, "active_object", None)
    if obj is not None and obj.get("mrd_role") == "result" and obj.get("mrd_run"):
        return Path(obj["mrd_run"]) if obj.get("mrd_status") == "cancelled" else None
    last = LAST
    if last is not None and last.status == "cancelled" and last.run_dir is not None:
        return last.run_dir
    return None
