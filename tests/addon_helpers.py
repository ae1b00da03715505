"""Helpers for the add-on tests: run a driver script of tests/blender/ in a fresh bpy process (bpy's state is
global), a fast stand-in for `mrd_backend.optimization.loop.optimize` (the worker loads it through MRD_WORKER_OPTIMIZER) and
tiny test images."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # mrd_blender_addon and build_addon live at the root (not an installed package)
    sys.path.insert(0, str(ROOT))
PY = sys.executable
FAKE = "addon_helpers:fake_optimize"
MARK = "@@RESULT@@"
DRIVERS = ROOT / "tests" / "blender"   # the driver scripts run in a bpy process


def has_bpy() -> bool:
    try:
        r = subprocess.run([PY, "-c", "import bpy"], capture_output=True, timeout=60)
        return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def env(**extra) -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
    e.setdefault("MRD_BACKEND_PYTHON", PY)
    e.update({k: str(v) for k, v in extra.items()})
    return e


def _result_of(proc) -> dict:
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            out = json.loads(line[len(MARK):])
            out["_stdout"], out["_stderr"], out["_rc"] = proc.stdout, proc.stderr, proc.returncode
            return out
    raise AssertionError(f"bpy script gave no result (exit {proc.returncode})\n--- stdout\n{proc.stdout[-4000:]}"
                         f"\n--- stderr\n{proc.stderr[-6000:]}")


def run_driver(script: str, *args, timeout: float = 240, **extra_env) -> dict:
    """Runs tests/blender/`script` with `args` (str()-ed) in a new Python process with bpy; returns what it
    passed to result(...)."""
    proc = subprocess.run([PY, str(DRIVERS / script), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env(**extra_env), cwd=str(ROOT))
    return _result_of(proc)


# -- a fast stand-in for the run loop ---------------------------------------------------------------------------
def _sphere(level=1):
    """An icosphere without trimesh (vertices, faces)."""
    t = (1 + 5 ** 0.5) / 2
    v = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t), (0, -1, -t), (0, 1, -t),
         (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    f = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2), (10, 7, 6),
         (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5), (2, 4, 11), (6, 2, 10),
         (8, 6, 7), (9, 8, 1)]
    v = [np.array(p, float) / np.linalg.norm(p) for p in v]
    for _ in range(level):
        cache, nf = {}, []

        def mid(a, b):
            key = (min(a, b), max(a, b))
            if key not in cache:
                m = v[a] + v[b]
                v.append(m / np.linalg.norm(m))
                cache[key] = len(v) - 1
            return cache[key]
        for a, b, c in f:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            nf += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        f = nf
    return np.array(v, np.float32), np.array(f, np.int32)


def fake_optimize(cfg, target=None, start=None, callback=None, should_stop=None, log=print, **_):
    """Streams `cfg.epochs` steps quickly. Env: MRD_FAKE_STEP_SECONDS (sleep per step), MRD_FAKE_CRASH_AT (the
    process dies at that step), MRD_FAKE_REMESH_AT (the topology changes after that step), MRD_FAKE_FAIL (raise an
    MRDError before the first step), MRD_FAKE_FINISH_SECONDS (the time the final files take after the last step)."""
    from mrd_backend.errors import MRDError
    out = Path(cfg.out)
    (out / "renders").mkdir(parents=True, exist_ok=True)
    (out / "meshes").mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg.to_dict()))
    if os.environ.get("MRD_FAKE_FAIL"):
        raise MRDError(os.environ["MRD_FAKE_FAIL"])
    pause = float(os.environ.get("MRD_FAKE_STEP_SECONDS", "0"))
    crash = int(os.environ.get("MRD_FAKE_CRASH_AT", "-1"))
    remesh_at = int(os.environ.get("MRD_FAKE_REMESH_AT", "-1"))
    log("fake optimizer: " + cfg.mode)
    print("noise on stdout that must not reach the protocol stream")
    _png(out / "renders" / "target_grid.png")
    _png(out / "renders" / "target_000.png")
    center, radius = target.bounds()
    if start is not None:
        v, f = np.asarray(start[0], np.float32), np.asarray(start[1], np.int32)
    else:
        v, f = _sphere(1)
        v = v * 0.7 * radius + center
    status = "done"
    for step in range(cfg.epochs):
        if should_stop is not None and should_stop():
            status = "cancelled"
            break
        if step == crash:
            sys.stderr.write("fake optimizer: simulated crash\n")
            sys.stderr.flush()
            os._exit(3)
        t0 = time.perf_counter()
        if pause:
            time.sleep(pause)
        v = (v + 0.05 * (v - center)).astype(np.float32)
        remeshed = step == remesh_at
        res = SimpleNamespace(step=step, loss=1.0 / (step + 1), similarity=step / max(1, cfg.epochs),
                              seconds=time.perf_counter() - t0, remeshed=remeshed, render=None, files={}, info={},
                              vertices=None, faces=None, textures={}, material={})
        res.render = np.full((8, 8, 3), 10 * step % 255, np.uint8)
        if cfg.mode == "shape":
            res.vertices, res.faces = v.copy(), f.copy()
        else:
            res.textures = {"base_color": np.full((4, 4, 3), 0.1 * step, np.float32),
                            "roughness": np.full((4, 4, 1), 0.5, np.float32)}
            res.material = {"metallic": 0.01 * step}
        if callback is not None:
            callback(res)
        if remeshed:  # the next steps have another topology: the sphere one level finer
            v2, f = _sphere(2)
            v = v2 * 0.7 * radius + center
    time.sleep(float(os.environ.get("MRD_FAKE_FINISH_SECONDS", "0")))   # final renders and evidence take a while
    _png(out / "renders" / "final_grid.png")
    (out / "report.json").write_text(json.dumps({"status": status}))
    return SimpleNamespace(out=out, status=status, report={"status": status}, vertices=v, faces=f)


def _png(path):
    import imageio.v3 as iio
    iio.imwrite(path, np.full((4, 4, 3), 128, np.uint8))


def write_hdr(path: Path, h: int = 8, w: int = 16, img: np.ndarray | None = None) -> np.ndarray:
    """A tiny linear equirectangular image (or `img`) as an uncompressed Radiance .hdr (RGBE). Returns the
    decoded values (what a reader sees), top row first."""
    if img is None:
        img = np.zeros((h, w, 3), np.float32)
        img[...] = np.linspace(0.1, 1.0, h, dtype=np.float32)[:, None, None]
        img[1, 3] = (8.0, 4.0, 2.0)
        img[..., 2] += np.linspace(0, 0.5, w, dtype=np.float32)[None, :]
    img = np.asarray(img, np.float32)
    h, w = img.shape[:2]
    m = img.max(-1)
    e = np.floor(np.log2(np.maximum(m, 1e-32))) + 1
    scale = np.where(m > 1e-32, 256.0 / np.exp2(e), 0.0)
    rgbe = np.zeros((h, w, 4), np.uint8)
    rgbe[..., :3] = np.clip(img * scale[..., None], 0, 255).astype(np.uint8)
    rgbe[..., 3] = np.where(m > 1e-32, e + 128, 0).astype(np.uint8)
    header = f"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y {h} +X {w}\n".encode()
    Path(path).write_bytes(header + rgbe.tobytes())
    decoded = rgbe[..., :3].astype(np.float32) * np.exp2(rgbe[..., 3:4].astype(np.float32) - 136)
    return np.where(rgbe[..., 3:4] == 0, 0.0, decoded).astype(np.float32)
