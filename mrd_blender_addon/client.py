"""The worker client: starts `python -m mrd_backend.worker` in the backend's environment, reads its JSON-lines
stream, cancels it. Standard library only (no bpy), so it also runs in tests and scripts.

The worker's stdout goes to a file in the run folder (`events.jsonl`), not a pipe: the worker never depends on
Blender staying alive to write its stream, so when Blender quits mid-run (stdin reaches its end: `--exit-on-eof`)
the worker finishes its step and its final files, and its report says `cancelled`. One reader thread per worker
follows that file and turns its lines into events on a queue; it never touches bpy. The UI drains the queue from a
`bpy.app.timers` callback (`poll()`, never blocks); background mode loops over `events()` (blocks).
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

EVENTS_FILE = "events.jsonl"   # the worker's protocol stream (its stdout), in the run folder
FOLLOW_SECONDS = 0.01          # how often the reader looks for new lines
ADDON_DIR = Path(__file__).resolve().parent


def backend_root() -> Path | None:
    """The folder that holds the `mrd_backend` package: inside the add-on (installed from the archive) or next to
    it (a development checkout)."""
    for root in (ADDON_DIR, ADDON_DIR.parent):
        if (root / "mrd_backend" / "__init__.py").is_file():
            return root
    return None


def _protocol_module():
    """The backend's protocol.py (stdlib only), loaded by its path: the one copy of the protocol's constants that
    the worker and this client share. None when no backend is found (check_backend then says what to do)."""
    import importlib.util
    root = backend_root()
    path = root / "mrd_backend" / "protocol.py" if root is not None else None
    if path is None or not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("_mrd_worker_protocol", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_PROTOCOL = _protocol_module()
PROTOCOL = _PROTOCOL.PROTOCOL if _PROTOCOL is not None else None
STOP_FILE = _PROTOCOL.STOP_FILE if _PROTOCOL is not None else None

_BACKEND = None


def backend():
    """The bpy-free `mrd_backend` package, for its small numpy-only modules (scene/: spec, io, cameras, ...).
    Importing it never imports mitsuba or torch."""
    global _BACKEND
    if _BACKEND is not None:
        return _BACKEND
    import importlib
    if (ADDON_DIR / "mrd_backend" / "__init__.py").is_file():
        _BACKEND = importlib.import_module(f"{__package__}.mrd_backend")
    else:
        try:
            _BACKEND = importlib.import_module("mrd_backend")
        except ImportError:
            root = backend_root()
            if root is None:
                raise ImportError("mrd_backend is neither bundled with the add-on nor next to it: "
                                  "install the add-on from the archive that build_addon.py writes") from None
            import importlib.util
            spec = importlib.util.spec_from_file_location("mrd_backend", root / "mrd_backend" / "__init__.py",
                                                          submodule_search_locations=[str(root / "mrd_backend")])
            module = importlib.util.module_from_spec(spec)
            sys.modules["mrd_backend"] = module
            spec.loader.exec_module(module)
            _BACKEND = module
    for sub in ("errors", "config", "objectives.catalogue", "outputs.naming", "scene.spec", "scene.io",
                "scene.cameras", "scene.environment", "scene.meshes", "scene.lights", "scene.principled"):
        importlib.import_module(f"{_BACKEND.__name__}.{sub}")
    return _BACKEND


def worker_env(extra: dict | None = None) -> dict:
    """The worker's environment: ours, minus what would make its Python load Blender's packages, plus the path
    of the bundled backend source (which wins over any installed copy, so add-on and worker always match)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP")}
    root = backend_root()
    paths = [str(root)] if root is not None else []
    if os.environ.get("MRD_WORKER_PYTHONPATH"):  # extra modules for the worker (tests, plug-ins)
        paths.append(os.environ["MRD_WORKER_PYTHONPATH"])
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra or {})
    return env


def python_problem(python: str | None) -> str | None:
    """Why `python` cannot be the backend interpreter, in one line (None when it looks usable)."""
    if not python:
        return ("no backend Python is set: open Edit > Preferences > Add-ons > MRD and set the backend Python, "
                "or press 'Create backend environment'")
    p = Path(python)
    if not p.exists():
        return (f"the backend Python {python} does not exist: fix the path in the MRD add-on preferences "
                "or press 'Create backend environment'")
    if p.is_dir():
        return f"the backend Python {python} is a folder: give the interpreter, e.g. {p / 'bin' / 'python'}"
    if not os.access(p, os.X_OK):
        return f"the backend Python {python} is not executable: give a Python interpreter"
    if backend_root() is None:
        return "the add-on carries no mrd_backend source: reinstall it from the archive build_addon.py writes"
    return None


def check_backend(python: str | None, timeout: float = 180.0) -> dict:
    """Runs `python -m mrd_backend.worker --check`. Always returns a dict with `ok` (bool) and `message` (a
    one-line summary); on success also the worker's report (modules, variant, models, missing)."""
    problem = python_problem(python)
    if problem:
        return {"ok": False, "message": problem, "missing": [problem]}
    try:
        proc = subprocess.run([python, "-m", "mrd_backend.worker", "--check"], env=worker_env(),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                              cwd=str(backend_root()))
    except subprocess.TimeoutExpired:
        return {"ok": False, "message": f"the backend Python {python} did not answer within {timeout:.0f} s",
                "missing": ["a backend that starts"]}
    except OSError as exc:
        return {"ok": False, "message": f"cannot run the backend Python {python}: {exc}",
                "missing": ["a Python interpreter that runs"]}
    info = None
    for line in proc.stdout.splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if isinstance(ev, dict) and ev.get("event") == "check":
            info = ev
    if info is None:
        tail = _last_lines(proc.stderr, 3) or "no output"
        if "No module named" in proc.stderr and "mrd_backend" in proc.stderr:
            tail = "it cannot import the bundled mrd_backend"
        return {"ok": False, "message": f"{python} is not a usable backend Python ({tail})",
                "missing": [f"a Python 3.10+ that runs the backend ({tail})"]}
    if info.get("protocol") != PROTOCOL:
        info["ok"] = False
        info.setdefault("missing", []).append(f"protocol {PROTOCOL} (the backend speaks {info.get('protocol')})")
    if info.get("ok"):
        models = ", ".join(info.get("models", {}) or [])
        info["message"] = (f"backend ready: Python {info.get('python')}, mitsuba {info['modules'].get('mitsuba')} "
                           f"({info.get('variant')}), torch {info['modules'].get('torch')}; models: {models}")
    else:
        info["message"] = "backend incomplete, missing: " + "; ".join(info.get("missing", []))
    return info


def _last_lines(text: str, n: int) -> str:
    lines = [s.strip() for s in (text or "").splitlines() if s.strip()]
    return " | ".join(lines[-n:])


def confined_run_folder(out, root) -> Path:
    """`out` resolved, if it is a folder strictly inside the results folder `root` (symbolic links and `..`
    resolved first); else a RuntimeError that says so. The worker writes only there (its files, STOP, logs), so a
    path from a .blend (a result's `mrd_run`) or a config can never make it write elsewhere."""
    o, r = Path(out).expanduser().resolve(), Path(root).expanduser().resolve()
    if o == r or r not in o.parents:
        raise RuntimeError(f"the run folder {o} is not inside the results folder {r}: runs are written only under "
                           "the Output folder (set Output to the folder that holds the run)")
    return o


def worker_args(python: str, scene=None, config=None, start=None, resume=None) -> list[str]:
    """The worker's command line: a new run (scene, config, optional start mesh) or the resume of a run folder."""
    args = [str(python), "-u", "-m", "mrd_backend.worker"]
    if resume is not None:
        args += ["--resume", str(resume)]
    else:
        args += ["--scene", str(scene), "--config", str(config)]
        if start:
            args += ["--start", str(start)]
    return args + ["--exit-on-eof"]


class Worker:
    """One worker process for one run folder (a new run, or with `resume=True` the resume of the run in `out`)."""

    def __init__(self, python: str, out: str | Path, scene: str | Path | None = None,
                 config: str | Path | None = None, start: str | Path | None = None, env: dict | None = None,
                 resume: bool = False, root: str | Path | None = None):
        self.python = python
        self.out = Path(out)
        self.root = Path(root) if root is not None else None   # the results folder `out` must lie in
        self.config = Path(config) if config is not None else None
        if not resume and (scene is None or config is None):
            raise ValueError("a new run needs its scene and config files")
        self.args = worker_args(python, scene, config, start, resume=self.out if resume else None)
        self.env = worker_env(env)
        self.log_path = self.out / "worker.log"
        self.proc: subprocess.Popen | None = None
        self.queue: queue.Queue = queue.Queue()
        self.hello: dict | None = None
        self.finished = False        # a done/error event (real or made up here) has been handed out
        self.cancel_requested = False
        self.detached = False        # Blender let go of it: it finishes its files on its own
        self._reader = None
        self._log = None
        self._offset = 0

    # -- lifetime ----------------------------------------------------------------------------------------------
    def start(self) -> "Worker":
        problem = python_problem(self.python)
        if problem:
            raise RuntimeError(problem)
        if self.root is not None:
            self.out = confined_run_folder(self.out, self.root)
        if self.config is not None:  # the worker writes where its config says: that must be this folder too
            try:
                named = json.loads(self.config.read_text()).get("out")
            except (OSError, ValueError):
                named = None
            if named is None or Path(named).expanduser().resolve() != self.out.resolve():
                raise RuntimeError(f"the run's config {self.config} names the run folder {named}, not {self.out}: "
                                   "start the run again")
        self.out.mkdir(parents=True, exist_ok=True)
        stop = self.out / STOP_FILE
        if stop.exists():
            stop.unlink()
        self._log = open(self.log_path, "ab")
        self.events_path = self.out / EVENTS_FILE
        start_at = self.events_path.stat().st_size if self.events_path.exists() else 0  # a resume appends
        stream = open(self.events_path, "ab")
        kw = {}
        if os.name == "nt":
            kw["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        else:
            kw["start_new_session"] = True  # Ctrl+C in Blender's terminal must not kill it mid-write
        try:
            self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=stream, stderr=self._log,
                                         env=self.env, cwd=str(self.out), **kw)
        except OSError as exc:
            self._log.close()
            raise RuntimeError(f"cannot start the backend Python {self.python}: {exc}") from None
        finally:
            stream.close()   # the worker holds its own copy
        self._offset = start_at
        self._reader = threading.Thread(target=self._read, name="mrd-worker-reader", daemon=True)
        self._reader.start()
        return self

    def _read(self):
        """Reader thread: follows the events file; its lines -> events on the queue, then one `_exit` event when
        the process has ended and every line is read. No bpy here."""
        proc = self.proc
        partial = b""
        try:
            with open(self.events_path, "rb") as fh:
                fh.seek(self._offset)
                while True:
                    chunk = fh.readline()
                    if chunk:
                        partial += chunk
                        if not partial.endswith(b"\n"):
                            continue   # the rest of the line is not written yet
                        raw, partial = partial, b""
                        try:
                            ev = json.loads(raw.decode("utf-8", "replace"))
                        except ValueError:
                            ev = None
                        if isinstance(ev, dict) and isinstance(ev.get("event"), str):
                            self.queue.put(ev)
                        continue
                    if proc.poll() is not None:
                        rest = fh.read()
                        if not rest:
                            break
                        partial += rest
                        continue
                    if self.detached:
                        break
                    time.sleep(FOLLOW_SECONDS)
        except (OSError, ValueError):
            pass
        if self.detached and proc.poll() is None:
            return
        rc = proc.wait()
        self.queue.put({"event": "_exit", "returncode": rc})

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self):
        return None if self.proc is None else self.proc.poll()

    def cancel(self):
        """Asks the worker to stop after the current step (a stop file and a `stop` line); it keeps its files."""
        self.cancel_requested = True
        try:
            (self.out / STOP_FILE).write_text("stop requested by the client\n")
        except OSError:
            pass
        try:
            if self.proc and self.proc.stdin and not self.proc.stdin.closed:
                self.proc.stdin.write(b"stop\n")
                self.proc.stdin.flush()
        except (OSError, ValueError):
            pass

    def detach(self):
        """Blender quits (or the UI stops waiting): asks the worker to stop after its step and leaves it to finish
        writing on its own; it is never killed, so its report ends as `cancelled`, not `running`."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.cancel()
        self.detached = True
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()   # end of input: with --exit-on-eof the worker cancels too
        except (OSError, ValueError):
            pass
        if self._log is not None:
            try:
                self._log.close()
            except (OSError, ValueError):
                pass

    def terminate(self, grace: float = 5.0):
        """Stops the process now (after `grace` seconds of a polite request). For unregister and Blender exit."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.cancel()
            try:
                self.proc.stdin.close()
            except (OSError, ValueError):
                pass
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(3)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self.close()

    def close(self, wait: float = 2.0):
        """Closes our end of stdin and the log (after up to `wait` seconds for the reader to see the end)."""
        reader_alive = self._reader is not None and self._reader.is_alive()
        if reader_alive and self._reader is not threading.current_thread() and wait > 0:
            self._reader.join(timeout=wait)
        for fh in (getattr(self.proc, "stdin", None), self._log):
            try:
                if fh is not None:
                    fh.close()
            except (OSError, ValueError):
                pass

    # -- events ------------------------------------------------------------------------------------------------
    def _check(self, ev: dict) -> list[dict]:
        """Validates the stream (hello first, right protocol) and replaces the reader's `_exit` with a final
        `error` when the worker ended without saying done/error (a crash)."""
        kind = ev["event"]
        if kind == "_exit":
            if self.finished:
                return []
            self.finished = True
            rc = ev.get("returncode")
            tail = self.stderr_tail(4)
            what = "crashed" if rc not in (0, None) else "stopped"
            return [{"event": "error", "message": f"the backend worker {what} (exit code {rc}) without finishing"
                                                  f"{': ' + tail if tail else ''}; full log: {self.log_path}",
                     "out": str(self.out), "returncode": rc}]
        if self.finished:
            return []
        if self.hello is None and kind not in ("hello", "error"):
            self.finished = True
            self.terminate(grace=1)
            return [{"event": "error", "message": "the backend did not start with a hello: it is not an mrd worker "
                     "of this version; point the preferences at the right environment", "out": str(self.out)}]
        if kind == "hello":
            self.hello = ev
            if ev.get("protocol") != PROTOCOL:
                self.finished = True
                self.terminate(grace=1)
                return [{"event": "error", "message": f"the backend speaks protocol {ev.get('protocol')}, this "
                         f"add-on speaks {PROTOCOL}: install matching versions", "out": str(self.out)}]
        if kind in ("done", "error"):
            self.finished = True
        return [ev]

    def poll(self, max_events: int = 1000) -> list[dict]:
        """Every event available now (never blocks)."""
        out = []
        while len(out) < max_events:
            try:
                ev = self.queue.get_nowait()
            except queue.Empty:
                break
            out.extend(self._check(ev))
        return out

    def events(self, timeout: float | None = None):
        """Yields events until the worker has finished (blocks; for background mode and scripts)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.finished:
            wait = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
            try:
                ev = self.queue.get(timeout=wait)
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"the worker sent nothing for {timeout} s")
                continue
            yield from self._check(ev)

    def stderr_tail(self, n: int = 20) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, 2)
                fh.seek(max(0, fh.tell() - 16384))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return _last_lines(text, n)
