"""`python -m mrd_backend.worker`: runs one optimization in its own process and streams it as JSON lines.

This is how the Blender add-on (or any other client) drives the backend without importing mitsuba or torch itself:

    python -m mrd_backend.worker --scene scene.npz --config config.json [--start start.npz] [--exit-on-eof]
    python -m mrd_backend.worker --resume RUN_DIR [--exit-on-eof]   # continue a cancelled or crashed run
    python -m mrd_backend.worker --check        # what this environment has and lacks, as one JSON line

Protocol 1 (stdout, one JSON object a line, UTF-8; everything else the backend prints goes to stderr):

    {"event": "hello", "protocol": 1, "pid": ..., "python": "3.11.2", "out": "/abs/run/folder", "epochs": 100}
    {"event": "log", "message": "..."}                               # the backend's own log lines
    {"event": "step", "step": 12, "epochs": 100, "loss": ..., "similarity": ..., "seconds": ...,
     "elapsed": ..., "eta": ..., "remeshed": false, "topology": 0, "data": "steps/step_000012.npz",
     "mesh": "steps/step_000012.npz", "faces": "steps/step_000000.npz", "n_vertices": ..., "n_faces": ...,
     "material": {...}, "textures": [...], "files": {...}, "write_seconds": ..., "sent": unix time}
    {"event": "done", "status": "done|stopped_early|cancelled", "out": ..., "report": "report.json",
     "final_mesh": "meshes/final.ply", "steps": 13, "seconds": ...}
    {"event": "error", "message": "one line", "out": ... or null}

Every path in an event is relative to `out` (the run folder), which is the one `hello` names: a config `out` that
holds an earlier run gets a fresh `NAME-2` folder, one holding other files a `mrd-run-TIME` sub-folder (the rules of
mrd_backend.outputs.folder.choose_run_folder), and every file of the run, steps/ included, goes there. Each step's arrays are
written to one .npz file atomically (a temporary name, then a rename) before its event is printed, so a client never
reads half a file:
`vertices` (V, 3) float32 every step of a shape run; `faces` (F, 3) int32 only in the first step of each topology
(the start, and after each remesh: `topology` counts them, `faces` names the file that holds them); `render` uint8
(H, W, 3), view 0; `texture.<name>` linear float32 (H, W, C) for material runs.

Cancel: create the file `STOP` in the run folder, write a line `stop` on stdin, or send SIGTERM (SIGINT). The run
finishes the step it is on, writes it and its final results, prints `done` with status "cancelled", and exits 0.
With --exit-on-eof, stdin reaching its end (the client died) cancels the same way.

Only plain types cross the boundary: numbers, strings, lists, dicts, arrays in files. Exit status: 0 after `done`,
1 after `error`, 2 for bad arguments.

Imports inside functions are lazy on purpose: `--check` must answer (with what is missing) in an environment that
lacks numpy, Mitsuba or torch, so at module level the worker loads the standard library and protocol.py only.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from .protocol import PROTOCOL, STEPS_DIR, STOP_FILE, json_line
from .protocol import finite as _finite
from .protocol import plain as _plain
# What a backend environment needs (module name -> pip name), checked by --check.
REQUIRED = {"numpy": "numpy", "mitsuba": "mitsuba", "drjit": "drjit", "torch": "torch", "torchvision": "torchvision",
            "scipy": "scipy", "trimesh": "trimesh", "gpytoolbox": "gpytoolbox", "cholespy": "cholespy",
            "imageio": "imageio", "PIL": "pillow", "matplotlib": "matplotlib"}


class Stream:
    """The protocol channel: the real stdout, one flushed JSON object a line. Anything else that writes to stdout
    (print, tqdm, C libraries) is sent to stderr, so it can never corrupt the stream."""

    def __init__(self):
        sys.stdout.flush()
        self._out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        self._lock = threading.Lock()

    def emit(self, event: str, **fields):
        line = json_line(event, **fields)
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()


def _one_line(text: str) -> str:
    lines = [s.strip() for s in str(text).splitlines() if s.strip()]
    return " ".join(lines)[:2000] if lines else ""


class StopFlag:
    """Set by the stop file, a `stop` line on stdin, SIGTERM/SIGINT, or (with --exit-on-eof) the end of stdin."""

    def __init__(self, folder: Path, exit_on_eof: bool):
        self.folder = folder
        self.reason = None
        self._signals = 0
        threading.Thread(target=self._watch_stdin, args=(exit_on_eof,), daemon=True).start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                signal.signal(sig, self._on_signal)
            except (ValueError, OSError):  # not the main thread, or the platform lacks the signal
                pass

    def _watch_stdin(self, exit_on_eof):
        # Raw bytes from fd 0, decoded leniently: a line that is not UTF-8 is noise, not the end of the connection
        # (and no buffered reader whose lock this daemon thread could hold when the interpreter shuts down).
        pending = b""
        try:
            fd = sys.stdin.fileno()
            while True:
                chunk = os.read(fd, 4096)
                *lines, pending = (pending + chunk).split(b"\n") if chunk else (pending, b"")
                for line in lines:
                    if line.decode("utf-8", "replace").strip().lower() in ("stop", "cancel", "quit"):
                        self.reason = self.reason or "stop requested on stdin"
                if not chunk:
                    break
        except (OSError, ValueError, AttributeError):  # no stdin, or one without a file descriptor
            pass
        if exit_on_eof:
            self.reason = self.reason or "the client closed the connection"

    def _on_signal(self, signum, frame):
        self._signals += 1
        self.reason = self.reason or f"signal {signum}"
        if self._signals >= 3:  # asked three times: stop now, without finishing the step
            os._exit(130)

    def __call__(self) -> bool:
        if self.reason is None and (self.folder / STOP_FILE).exists():
            self.reason = f"{STOP_FILE} file"
        return self.reason is not None


def _save_npz(path: Path, arrays: dict):
    from .atomic import atomic_write, npz_bytes  # lazy: numpy loads only once a step is written, after "hello"
    data = npz_bytes(arrays)
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


class StepWriter:
    """Writes each step's arrays under steps/ and turns a StepResult into a plain `step` event."""

    def __init__(self, out: Path, epochs: int, emit):
        self.out, self.epochs, self.emit = out, epochs, emit
        (out / STEPS_DIR).mkdir(parents=True, exist_ok=True)
        self.t0 = time.perf_counter()
        self.topology = -1
        self.faces_file = None
        self._faces = None
        self.count = 0

    def __call__(self, step):
        import numpy as np
        t_write = time.perf_counter()
        n = int(getattr(step, "step", self.count))
        name = f"{STEPS_DIR}/step_{n:06d}.npz"
        arrays = {}
        ev = {"step": n, "epochs": self.epochs, "loss": _finite(getattr(step, "loss", None)),
              "similarity": _finite(getattr(step, "similarity", None)),
              "seconds": _finite(getattr(step, "seconds", None)), "remeshed": bool(getattr(step, "remeshed", False))}
        v, f = getattr(step, "vertices", None), getattr(step, "faces", None)
        if v is not None and f is not None:
            v = np.ascontiguousarray(v, np.float32)
            f = np.ascontiguousarray(f, np.int32)
            arrays["vertices"] = v
            if self._faces is None or f.shape != self._faces.shape or not np.array_equal(f, self._faces):
                self.topology += 1
                self._faces, self.faces_file = f.copy(), name
                arrays["faces"] = f
            ev.update(mesh=name, faces=self.faces_file, topology=self.topology, n_vertices=len(v), n_faces=len(f))
        render = getattr(step, "render", None)
        if render is not None:
            arrays["render"] = np.ascontiguousarray(render)
        textures = getattr(step, "textures", None) or {}
        for k, t in textures.items():
            arrays[f"texture.{k}"] = np.ascontiguousarray(t, np.float32)
        if textures:
            ev["textures"] = sorted(textures)
        material = getattr(step, "material", None) or {}
        if material:
            ev["material"] = {k: (_finite(x) if np.ndim(x) == 0 else np.asarray(x, float).tolist())
                              for k, x in material.items()}
        files = getattr(step, "files", None) or {}
        if files:
            ev["files"] = {k: (str(p) if not isinstance(p, (list, tuple)) else [str(q) for q in p])
                           for k, p in files.items()}
        info = getattr(step, "info", None) or {}
        if info:
            ev["info"] = json.loads(json.dumps(info, default=_plain))
        if arrays:
            _save_npz(self.out / name, arrays)
            ev["data"] = name
        self.count += 1
        elapsed = time.perf_counter() - self.t0
        ev["elapsed"] = elapsed
        ev["eta"] = elapsed / self.count * max(0, self.epochs - n - 1)
        ev["write_seconds"] = time.perf_counter() - t_write  # what streaming this step cost the run
        ev["sent"] = time.time()
        self.emit("step", **ev)


def _load_optimizer():
    """`mrd_backend.optimization.loop.optimize`, or the function MRD_WORKER_OPTIMIZER names as module:function (tests use a
    fast stand-in to exercise the protocol without rendering)."""
    import importlib
    spec = os.environ.get("MRD_WORKER_OPTIMIZER", "mrd_backend.optimization.loop:optimize")
    module, _, func = spec.partition(":")
    return getattr(importlib.import_module(module), func)


def run(args, stream: Stream) -> int:
    import numpy as np

    from .config import RunConfig, read_config
    from .errors import MRDError
    from .outputs.folder import choose_run_folder
    from .scene.io import load_spec

    out = None
    try:
        config = read_config(args.config)
        if args.out:
            config["out"] = args.out
        if not config.get("out"):
            raise MRDError("the config names no run folder: set \"out\" or pass --out")
        cfg = RunConfig.from_dict(config)  # wrong types and values: one clear line, before anything is written
        # The one folder for all of this run's files (steps/ too): an earlier run's folder gives a fresh `-2` one.
        out = choose_run_folder(cfg.out).resolve()
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MRDError(f"cannot create the run folder {out} ({exc.strerror or exc})") from None
        cfg.out = str(out)
        stop = StopFlag(out, args.exit_on_eof)
        _hello(stream, out, cfg)
        target = load_spec(args.scene)
        start = None
        if args.start:
            try:
                with np.load(args.start, allow_pickle=False) as z:
                    start = (np.asarray(z["vertices"], np.float32), np.asarray(z["faces"], np.int32))
            except FileNotFoundError:
                raise MRDError(f"start mesh file {args.start} does not exist") from None
            except (KeyError, ValueError, OSError) as exc:
                raise MRDError(f"{args.start} is not a start mesh (.npz with vertices and faces): {exc}") from None
        return _optimize_streamed(stream, out, cfg, stop, cfg, target=target, start=start)
    except BaseException as exc:
        return _failure(stream, exc, out)


def _hello(stream: Stream, out: Path, cfg, **extra) -> None:
    stream.emit("hello", protocol=PROTOCOL, pid=os.getpid(), python=".".join(map(str, sys.version_info[:3])),
                out=str(out), epochs=int(cfg.epochs), mode=cfg.mode, model=cfg.model, **extra)


def _optimize_streamed(stream: Stream, out: Path, cfg, stop, config, **kwargs) -> int:
    """Runs the optimizer with every step streamed, then says `done`."""
    writer = StepWriter(out, int(cfg.epochs), stream.emit)
    result = _load_optimizer()(config, callback=writer, should_stop=stop,
                               log=lambda msg: stream.emit("log", message=_one_line(msg)), **kwargs)
    status = getattr(result, "status", "done")
    if status == "cancelled" and stop.reason:
        stream.emit("log", message=f"stopped after the current step ({stop.reason})")
    rout = Path(getattr(result, "out", out))
    final = rout / "meshes" / "final.ply"
    stream.emit("done", status=status, out=str(rout), report="report.json",
                final_mesh="meshes/final.ply" if final.exists() else None, steps=writer.count,
                seconds=time.perf_counter() - writer.t0)
    return 0


def _failure(stream: Stream, exc: BaseException, out) -> int:
    """One `error` event for whatever ended the run; never a library exception (or its object) across the
    boundary."""
    from .errors import MRDError
    if isinstance(exc, MRDError):
        message = _one_line(exc) or "the backend reported an error"
    elif isinstance(exc, MemoryError):
        message = "the backend ran out of memory: lower the resolution, views or spp"
    else:
        traceback.print_exc(file=sys.stderr)
        msg = _one_line(exc)
        message = (f"internal error in the backend ({type(exc).__name__}{': ' + msg if msg else ''}); "
                   "the worker log has the details")
    stream.emit("error", message=message, out=_s(out))
    return 1


def resume(args, stream: Stream) -> int:
    """Continues the run in `args.resume` from its last checkpoint, streaming the same protocol (its `hello` says
    `resumed_from`, the first step to be computed)."""
    from .optimization.checkpoint import load
    from .config import RunConfig
    from .errors import MRDError
    out = Path(args.resume).resolve()
    try:
        if not (out / "config.json").is_file():
            raise MRDError(f"{out} is not a run folder (no config.json)")
        cfg = RunConfig.from_file(out / "config.json")
        saved = load(out)
        (out / STOP_FILE).unlink(missing_ok=True)  # it asked the earlier process to stop, not this one
        stop = StopFlag(out, args.exit_on_eof)
        _hello(stream, out, cfg, resumed_from=(saved[1]["epoch"] + 1) if saved else 0)
        return _optimize_streamed(stream, out, cfg, stop, None, resume=out)
    except BaseException as exc:
        return _failure(stream, exc, out)


def _s(p):
    return None if p is None else str(p)


def check() -> dict:
    """What this Python environment has for running the backend (never raises)."""
    import importlib
    info = {"protocol": PROTOCOL, "python": ".".join(map(str, sys.version_info[:3])), "executable": sys.executable,
            "backend": str(Path(__file__).resolve().parent), "modules": {}, "missing": []}
    if sys.version_info < (3, 10):
        info["missing"].append(f"Python 3.10 or newer (this is {info['python']})")
    for mod, pip_name in REQUIRED.items():
        try:
            m = importlib.import_module(mod)
            info["modules"][mod] = str(getattr(m, "__version__", "installed"))
        except Exception as exc:
            info["modules"][mod] = None
            info["missing"].append(f"{pip_name} ({type(exc).__name__}: {_one_line(exc)[:200]})")
    if info["modules"].get("mitsuba"):
        try:
            from .render.variant import mitsuba
            info["variant"] = mitsuba().variant()
        except Exception as exc:
            info["variant"] = None
            info["missing"].append(f"a usable Mitsuba variant ({_one_line(exc)[:300]})")
    try:
        from .objectives import REGISTRY, objective_class
        models = {}
        for name in REGISTRY:
            try:
                models[name] = objective_class(name).native_size
            except Exception as exc:
                models[name] = f"unavailable: {type(exc).__name__}: {_one_line(exc)[:200]}"
        info["models"] = models
    except Exception as exc:
        info["models"] = {}
        info["missing"].append(f"the backend's objectives ({type(exc).__name__}: {_one_line(exc)[:200]})")
    try:
        _load_optimizer()
    except Exception as exc:
        info["missing"].append(f"the backend's run loop ({type(exc).__name__}: {_one_line(exc)[:200]})")
    info["ok"] = not info["missing"]
    return info


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m mrd_backend.worker", description=__doc__.split("\n\n")[0])
    p.add_argument("--scene", help="the target SceneSpec (.npz written by mrd_backend.scene.io.save_spec)")
    p.add_argument("--config", help="RunConfig as a JSON file or JSON text; its \"out\" is the run folder")
    p.add_argument("--start", help="start mesh .npz with vertices (V, 3) and faces (F, 3) (default: the config's)")
    p.add_argument("--out", help="run folder (overrides the config's \"out\")")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue this run folder from its last checkpoint")
    p.add_argument("--exit-on-eof", action="store_true", help="cancel when stdin reaches its end (the client died)")
    p.add_argument("--check", action="store_true", help="print what this environment has and lacks, then exit")
    args = p.parse_args(argv)
    stream = Stream()
    if args.check:
        info = check()
        stream.emit("check", **info)
        return 0 if info["ok"] else 1
    if args.resume:
        return resume(args, stream)
    if not args.scene or not args.config:
        stream.emit("error", message="the worker needs --scene and --config (or --resume RUN_DIR, or --check)",
                    out=None)
        return 2
    return run(args, stream)


if __name__ == "__main__":
    sys.exit(main())
