#!/usr/bin/env python
"""Runs the research code's shape loop (the public repository ag-perception-wallis-lab/MRD, a checkout outside this
repository) on this machine, beside ours, for issue 20's side-by-side tables. Nothing of the research code is copied
here: this script imports its modules from the checkout and drives `shape.reconstruct_geometry` from the outside.

    python scripts/bench_research_loop.py setup                     # prints the commands that make the checkout
    python scripts/bench_research_loop.py step suzanne constant mae -n 4 -d 128 --spp 16 -e 3 [--json]
    python scripts/bench_research_loop.py side-by-side mae -n 4 -d 128 --spp 16 -e 3 --repeats 2
    python scripts/bench_research_loop.py chamfer --scenes blob knot suzanne --seeds 42 43

`step` times one research-loop run (comparable with `mrd bench step SCENE ENV MODEL -n -d --spp -e --remesh ""
--no-panel --weights untrained --integrator research`): seconds per epoch (median of the epochs after the first, which
compiles kernels), the same parts as our bench where they exist (primal render, backward, its render backward and
guiding set-ups), kernels compiled per epoch, the loop's peak RSS (VmHWM at the end of the last epoch) and the whole
process's, the machine (mrd_backend.machine). `side-by-side` alternates, in fresh processes, the research loop, our
`research` and our `fast` integrator profiles (each `--repeats` times) and prints one table
(`--framing research`, the default, puts our cameras and start sphere where the research loop puts them, 5 units from
the origin; `ours` keeps our default rig, 2.8 bounding radii, where the target covers about 1.5x more pixels). `chamfer` runs the
research loop on our bundled targets (exported to a PLY its scene dict loads) and, alternating with it, our
`research` and `fast` profiles (scripts/bench_profiles.py's runs) at the same budget; chamfer as our report computes
it (mrd_backend.scene.meshes.chamfer, both meshes normalized by the target's bounding box).

How the research loop is driven (every change is made in this process, none in the checkout's files):
- Epochs are timed by replacing the `tqdm` name in its shape module with an iterator that reads the clock each time
  the epoch loop asks for the next epoch: an epoch's time is its whole body (renders, backward, Adam, pixel-error
  images, PNGs, early-stopping bookkeeping), as the research loop pays it.
- With the synchronizing profile (default, as `mrd bench step`): `mi.render` and `dr.backward`, as its shape module
  sees them, and the integrator's render_backward and silhouette/guiding set-ups are wrapped by our bench's
  `instrument_integrator` with `Profile(sync=True, kernels=True)`. `--no-sync` leaves the loop unwrapped.
- Untrained networks (no hub downloads here): its torchvision constructors are replaced by weight-less ones. The
  six-network panel of its mae runs (`load_all_models`) is replaced by an empty list (our `--no-panel`); CLIP/DINO
  need Hugging Face weights and ResNet-SIN CUDA, so the panel cannot run here. Packages only those need
  (transformers, diffusers, modelvshuman) are stubbed in sys.modules; calling them raises.
- Without ffmpeg its end-of-run videos (after the loop) are skipped.
- matplotlib >= 3.9 has no `cm.get_cmap` (its pixel-error plot calls it): the name is added back.
- CPU targets: on LLVM the research loop compares tone-mapped renders with linear HDR targets (research-code.md,
  section 7, bug 11; on CUDA it tone-maps them). `--cpu-targets tonemapped` (default) tone-maps them with its own
  `linear_to_srgb_ldr`, as it does on CUDA and as ours does; `released` keeps the bug.
- Start and target meshes: its scene dict's shape file is our target mesh (Blender Z-up turned into its Y-up frame),
  its start `assets/models/ico_10k.ply` our level-5 icosphere (10,242 vertices, unit radius), in a scratch folder
  that is the working directory (its outputs go to ./results there).
- The final mesh (it never writes one) is `LargeSteps.from_differential(optimizer["u"])` after the last step.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESEARCH_URL = "https://github.com/ag-perception-wallis-lab/MRD"
RESEARCH_COMMIT = "89297efce76671a8a5f7f045af68318d4b73d18d"     # "release"; research-code.md describes it
DEFAULT_CHECKOUT = "/work/scratch/research-mrd"
DEFAULT_EXTRA = "/work/scratch/research-extra"   # packages it imports that our venv lacks (see `setup`)
EXTRA_PACKAGES = ["scikit-learn==1.7.2", "joblib", "threadpoolctl", "opencv-python-headless==4.10.0.84"]
MODELS = ("mae", "resnet")
PARTS = [("render", "primal render"), ("backward", "backward, all of it"),
         ("backward/render_backward", "  render backward"),
         ("backward/render_backward/silhouette_setup", "    primary silhouette set-up"),
         ("backward/render_backward/guiding_setup", "    indirect guiding set-up"),
         ("other", "everything else (Large Steps, Adam, logging, PNGs)")]


def setup_commands(checkout: str, extra: str) -> str:
    return "\n".join([
        f"git clone {RESEARCH_URL} {checkout}",
        f"git -C {checkout} checkout {RESEARCH_COMMIT}",
        f"{sys.executable} -m pip install --no-deps --target {extra} -c {ROOT}/scripts/constraints.txt "
        + " ".join(f"'{p}'" for p in EXTRA_PACKAGES)])


def check_checkout(checkout: str, extra: str) -> None:
    if not (Path(checkout) / "src" / "shape.py").is_file():
        raise SystemExit(f"no research checkout at {checkout}: make one with\n{setup_commands(checkout, extra)}")


def research_commit(checkout: str) -> str | None:
    try:
        return subprocess.run(["git", "-C", checkout, "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except Exception:
        return None


def vm(key: str) -> float:
    from mrd_backend.cli.bench import proc_status_mb
    return proc_status_mb(key)


# -- the research loop, driven from the outside --------------------------------------------------------------------
class _Proxy:
    """A module seen through a few replaced names; everything else is the module's own."""
    def __init__(self, real, **names):
        self._real = real
        self.__dict__.update(names)

    def __getattr__(self, name):
        return getattr(self._real, name)


def _stub_module(name: str, attrs: list[str]) -> None:
    def missing(*a, **k):
        raise RuntimeError(f"{name} is not installed here (stubbed by bench_research_loop.py)")
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    for a in attrs:
        setattr(sys.modules[name], a, missing)


def import_research(checkout: str, extra: str):
    """Imports its shape module (and what it imports) with the environment this machine lacks filled in."""
    from mrd_backend.render.variant import mitsuba
    mitsuba()   # the same variant choice and libLLVM as ours (its model.py then sets the same variant)
    import mitsuba as mi
    os.environ.setdefault("DEFAULT_MI_VARIANT", mi.variant())
    if extra and Path(extra).is_dir():
        sys.path.append(extra)
    sys.path.insert(0, str(Path(checkout) / "src"))
    import importlib.util
    for name, attrs in (("transformers", ["AutoModel", "CLIPVisionModel"]),
                        ("diffusers.models.autoencoders.autoencoder_kl", ["AutoencoderKL"]),
                        ("modelvshuman.models.pytorch.model_zoo", ["resnet50_trained_on_SIN"])):
        if importlib.util.find_spec(name.split(".")[0]) is None:
            _stub_module(name, attrs)
    import matplotlib
    import matplotlib.cm
    if not hasattr(matplotlib.cm, "get_cmap"):
        matplotlib.cm.get_cmap = matplotlib.colormaps.get_cmap
    import model as rmodel
    import shape as rshape
    import torchvision
    rmodel.resnet50 = lambda *a, **k: torchvision.models.resnet50(weights=None)   # untrained control
    rmodel.vgg19 = lambda *a, **k: torchvision.models.vgg19(weights=None)
    rshape.load_all_models = lambda: []     # no six-network panel (our --no-panel)
    import shutil
    if shutil.which("ffmpeg") is None:      # its end-of-run videos need ffmpeg (after the loop: never timed)
        rshape.create_videos_from_local_images = lambda *a, **k: print("no ffmpeg: videos skipped", file=sys.stderr)
    return rshape, rmodel


def export_inputs(work: Path, scene: str) -> tuple:
    """Our target mesh in the research frame (Y-up) and our research start sphere, as PLY files under work/."""
    import numpy as np
    from mrd_backend.scene.meshes import icosphere, save_ply
    from mrd_backend.scenes import load_target_mesh
    v, f = load_target_mesh(scene)
    models = work / "assets" / "models"
    models.mkdir(parents=True, exist_ok=True)
    v = np.asarray(v, np.float64)
    save_ply(models / f"target_{Path(scene).stem}.ply", np.stack([v[:, 0], v[:, 2], -v[:, 1]], 1), f)   # Z-up -> Y-up
    save_ply(models / "ico_10k.ply", *icosphere(5))
    return v, np.asarray(f), f"assets/models/target_{Path(scene).stem}.ply"


def our_shape_settings(scene: str) -> dict:
    """Large Steps lambda and learning rate as our runs resolve them for this scene (research: suzanne 25, others
    15; lr 0.1), so both loops optimize with the same hyperparameters."""
    from mrd_backend.config import RunConfig
    c = RunConfig(scene=scene, model="mae").resolved(False, None)
    return {"lambda_reg": c.step_lambda, "lr": c.lr, "remesh_decay": c.remesh_decay}


def run_research(spec: dict) -> dict:
    """One research-loop run in this process; returns its figures (and the final mesh's chamfer)."""
    checkout, work = spec["checkout"], Path(spec["work"])
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)
    rshape, rmodel = import_research(checkout, spec["extra"])
    import drjit as dr
    import mitsuba as mi
    import numpy as np
    import torch
    import scenes as rscenes
    from config import Config, GeometryConfig
    from image_processing import linear_to_srgb_ldr
    from mrd_backend.cli.bench import instrument_integrator
    from mrd_backend.render.guiding import steady_guiding
    from mrd_backend.optimization.timing import Profile

    torch.manual_seed(spec["seed"])
    tv, tf, target_file = export_inputs(work, spec["scene"])
    hp = our_shape_settings(spec["scene"])
    sync = spec["sync"]
    prof = Profile(sync=True, kernels=True) if sync else None
    marks, hwm, cpu = [], [], []
    captured: dict = {}
    tonemap_targets = spec["cpu_targets"] == "tonemapped" and not mi.variant().startswith("cuda")

    class EpochClock:
        """Stands in for tqdm around the epoch loop: a clock mark (and the peak RSS) whenever it asks for the next
        epoch, and once more when it asks after the last one."""
        def __init__(self, iterable, *a, **k):
            self.iterable = iterable

        def __iter__(self):
            for x in self.iterable:
                if prof is not None:
                    prof._boundary()
                marks.append(time.perf_counter())
                cpu.append(time.process_time())
                hwm.append(vm("VmHWM"))
                yield x
            if prof is not None:
                prof._boundary()
            marks.append(time.perf_counter())
            cpu.append(time.process_time())
            hwm.append(vm("VmHWM"))

        @staticmethod
        def write(text, *a, **k):
            print(text, file=sys.stderr)

    def render(scene, params=None, *a, **kw):
        if params is None:      # the targets (before the loop)
            img = mi.render(scene, *a, **kw)
            return linear_to_srgb_ldr(img) if tonemap_targets else img
        if prof is None:
            return mi.render(scene, params, *a, **kw)
        with prof("render"):
            return prof.settle(mi.render(scene, params, *a, **kw))

    def backward(*a, **kw):
        if prof is None:
            return dr.backward(*a, **kw)
        with prof("backward"):
            return dr.backward(*a, **kw)

    keep = []

    def load_dict(d, *a, **kw):
        scene = mi.load_dict(d, *a, **kw)
        if isinstance(d, dict) and d.get("type") == "scene":
            integ = scene.integrator()
            if spec["steady_guiding"]:
                steady_guiding(integ)
            if prof is not None:
                instrument_integrator(integ, prof)
            keep.append(integ)      # the wrappers live on this Python object
            captured["integrator"] = str(integ)
        return scene

    class RecordingLargeSteps(mi.ad.largesteps.LargeSteps):
        def __init__(self, verts, faces, *a, **k):
            super().__init__(verts, faces, *a, **k)
            captured["ls"], captured["faces"] = self, faces   # from_differential keeps these faces' vertex order

    class RecordingEarlyStopping(rshape.EarlyStopping):
        def step(self, value, optimizer, params, epoch):
            captured["optimizer"] = optimizer
            captured.setdefault("losses", []).append(float(value))
            return super().step(value, optimizer, params, epoch)

    rshape.tqdm = EpochClock
    rshape.mi = _Proxy(mi, render=render, load_dict=load_dict)
    rshape.dr = _Proxy(dr, backward=backward)
    rshape.EarlyStopping = RecordingEarlyStopping
    mi.ad.largesteps.LargeSteps = RecordingLargeSteps

    scene = dict(rscenes.Scene.SUZANNE.value)       # its shape-scene dict: direct_projective, diffuse (copied:
    scene["shape"] = dict(scene["shape"])            # its loop mutates the dict it is given)
    scene["shape"].update(type="ply", filename=target_file)
    scene["shape"].pop("to_world", None)
    if spec["envmap"] == "constant":
        envmap = rscenes.Envmap.CONSTANT.value
    else:
        envmap = str(Path(spec["envmap"]).resolve())
    model = getattr(rmodel.Model, spec["model"].upper()).value()
    size = spec["size"]
    if spec["model"] == "resnet" and size != 256:
        raise SystemExit("the research ResNet objective reshapes every render to 256x256: use -d 256")
    cfg = Config([size, size], scene, model, envmap, False, False, spec["spp"], seed=spec["seed"])
    geom = GeometryConfig(spec["views"], hp["lambda_reg"], hp["lr"], list(spec["remesh"]), spec["epochs"])
    import contextlib
    from mrd_backend.cli.bench import mitsuba_log_to_stderr
    mitsuba_log_to_stderr()     # stdout holds only figures; so do its own prints
    t0, cpu0 = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(sys.stderr):
        logs = rshape.reconstruct_geometry(cfg, geom, defaultdict(list), None, f"{spec['scene']}-{spec['model']}")
    run_seconds = time.perf_counter() - t0
    cpu_per_wall = (time.process_time() - cpu0) / max(1e-9, run_seconds)
    loop_peak = hwm[-1] if hwm else None
    ls, opt = captured["ls"], captured["optimizer"]
    v = np.asarray(ls.from_differential(opt["u"]).numpy(), np.float64).reshape(-1, 3)
    f = np.asarray(captured["faces"].numpy(), np.int64).reshape(-1, 3)
    v = np.stack([v[:, 0], -v[:, 2], v[:, 1]], 1)     # back to our Z-up frame
    from mrd_backend.machine import describe
    from mrd_backend.scene.meshes import chamfer, icosphere
    end = chamfer(v, f, tv, tf)
    start = chamfer(*icosphere(5), tv, tf)
    epochs = [b - a for a, b in zip(marks, marks[1:])]
    out = {"loop": "research code", "research_commit": research_commit(checkout), "spec": spec,
           "hyperparameters": {**hp, "remesh": list(spec["remesh"]), "lr_decay_at_remesh": 0.8},
           "integrator": {"dict": scene["integrator"], "object": captured.get("integrator")},
           "variant": mi.variant(), "targets_tonemapped": tonemap_targets or mi.variant().startswith("cuda"),
           "synced_parts": sync, "steady_guiding": spec["steady_guiding"],
           "epoch_seconds": epochs, "first_step_seconds": epochs[0] if epochs else None,
           "steps_used": len(epochs[1:]),
           "step_seconds_median": statistics.median(epochs[1:] or epochs),
           "step_seconds_mean": statistics.fmean(epochs[1:] or epochs),
           "loop_peak_rss_mb": loop_peak, "peak_rss_mb": vm("VmHWM"), "rss_end_mb": vm("VmRSS"),
           "run_seconds": run_seconds, "loss": logs["loss"], "cpu_per_wall": cpu_per_wall,
           "epoch_cpu_per_wall": [(c1 - c0) / max(1e-9, t1 - t0) for c0, c1, t0, t1 in zip(cpu, cpu[1:], marks, marks[1:])],
           "chamfer": {"start": start["chamfer"], "end": end["chamfer"]},
           "normal_consistency": {"start": start["normal_consistency"], "end": end["normal_consistency"]},
           "final_vertices": int(len(v)), "machine": describe()}
    if prof is not None:
        out.update(split_epochs(prof, marks))
        prof.close()
    return out


def split_epochs(prof, marks) -> dict:
    """Per-epoch seconds in each instrumented part, and kernels compiled, from the profile's events."""
    per = []
    for a, b in zip(marks, marks[1:]):
        parts = defaultdict(float)
        for e in prof.events:
            if a <= e["t0"] < b:
                parts[e["part"]] += e["seconds"]
        parts["other"] = max(0.0, (b - a) - parts["render"] - parts["backward"])
        compiled = sum(c["compiled"] + c["from_disk"] for t, _, c in prof.kernel_log if a <= t < b)
        launched = sum(c["launches"] for t, _, c in prof.kernel_log if a <= t < b)
        per.append({"seconds": b - a, "parts": dict(parts), "kernels_compiled": compiled, "kernels_launched": launched})
    use = per[1:] or per
    names = [n for n, _ in PARTS]
    med = {n: statistics.median([p["parts"].get(n, 0.0) for p in use]) for n in names}
    mean = {n: statistics.fmean([p["parts"].get(n, 0.0) for p in use]) for n in names}
    wall = statistics.fmean([p["seconds"] for p in use])
    return {"parts_median": med, "parts_mean": mean, "shares": {n: mean[n] / wall for n in names},
            "kernels_compiled_per_step": [p["kernels_compiled"] for p in per],
            "kernels_launched_per_step": [p["kernels_launched"] for p in per], "per_step": per}


def format_step(out: dict) -> str:
    from mrd_backend.machine import one_line
    s = out["spec"]
    lines = [one_line(out["machine"]),
             f"research loop ({(out['research_commit'] or '?')[:7]}): {s['scene']} / {s['envmap']} / {s['model']}: "
             f"{s['views']} views {s['size']}x{s['size']}, {s['spp']} spp, integrator {out['integrator']['dict']}, "
             f"variant {out['variant']}, targets {'tone-mapped' if out['targets_tonemapped'] else 'linear (as released on CPU)'}"
             + ("" if out["steady_guiding"] is False else ", with OUR steady guiding set-up"),
             f"step (one epoch of {s['views']} views): median {out['step_seconds_median']:.3f} s, mean "
             f"{out['step_seconds_mean']:.3f} s over {out['steps_used']} steps; first step "
             f"{out['first_step_seconds']:.3f} s" + ("" if out["synced_parts"] else "   [--no-sync]")]
    if "parts_median" in out:
        lines.append(f"  {'part':52s} {'median s':>9s} {'mean s':>9s} {'share':>7s}")
        for n, label in PARTS:
            lines.append(f"  {label:52s} {out['parts_median'][n]:9.4f} {out['parts_mean'][n]:9.4f} "
                         f"{100 * out['shares'][n]:6.1f}%")
        lines.append("kernels compiled or loaded, per step: " + " ".join(map(str, out["kernels_compiled_per_step"])))
    lines.append(f"CPU seconds per wall second (all threads): {out['cpu_per_wall']:.2f} of "
                 f"{out['machine'].get('usable_cpus')} usable cores")
    lines.append(f"peak RSS: loop {out['loop_peak_rss_mb']:.0f} MB, whole process {out['peak_rss_mb']:.0f} MB; "
                 f"chamfer start {out['chamfer']['start']:.5f} end {out['chamfer']['end']:.5f}")
    return "\n".join(lines)


# -- fresh processes, alternating with ours -----------------------------------------------------------------------
def _child(argv_json: str) -> int:
    spec = json.loads(argv_json)
    out = run_research(spec)
    print("RESULT " + json.dumps(out), flush=True)
    return 0


def _result(proc, what: str) -> dict | None:
    text = proc.stdout
    if "RESULT {" in text:
        return json.loads(text[text.index("RESULT {") + 7:].splitlines()[0])
    if proc.returncode == 0 and text.lstrip().startswith("{"):
        return json.loads(text[text.index("{"):])
    print(f"{what}: FAILED (exit status {proc.returncode})\n{proc.stderr[-3000:]}", file=sys.stderr)
    return None


def research_child(spec: dict) -> dict | None:
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return _result(proc, f"research loop {spec['scene']} seed {spec['seed']}")


def ours_step(a, integrator: str, config_file: str) -> dict | None:
    cmd = [sys.executable, "-m", "mrd_backend.cli", "bench", "step", a.scene, a.envmap, a.model, "-n", str(a.views),
           "-d", str(a.dims), "--spp", str(a.spp), "-e", str(a.epochs), "--integrator", integrator, "--remesh", "",
           "--no-panel", "--weights", "untrained", "--seed", str(a.seed), "--config", config_file, "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
    return _result(proc, f"ours ({integrator})")


# Our runs framed as the research loop frames them: cameras 5 units from the origin looking at it, the start sphere
# at the origin at unit radius (our defaults: 2.8 bounding radii around the target's centre, a sphere of 0.7 radii).
RESEARCH_RIG = {"camera_distance": 5.0, "camera_target": "origin", "start_placement": "origin"}


def our_config_file(a) -> str:
    # --config replaces the bench's own base settings with RunConfig's defaults: restore those (mrd_backend/bench.py)
    extra = {"evidence": False, "patience": 0, "render_every": 1000, "mesh_every": 1000}
    if a.framing == "research":
        extra.update(RESEARCH_RIG)
    fd, path = tempfile.mkstemp(prefix="mrd-bench-config-", suffix=".json")
    os.write(fd, json.dumps(extra).encode())
    os.close(fd)
    return path


def cmd_side_by_side(a) -> int:
    config_file = our_config_file(a)
    rows, machine = defaultdict(list), None
    for r in range(a.repeats):
        for who in ("research loop", "research", "fast"):
            if who == "research loop":
                res = research_child(step_spec(a))
                if res:
                    rows[who].append((res["step_seconds_median"], res["loop_peak_rss_mb"], res.get("shares", {}),
                                      res.get("cpu_per_wall")))
            else:
                res = ours_step(a, who, config_file)
                if res:
                    rows[who].append((res["step_seconds_median"], res["peak_rss_mb"], res.get("shares", {}),
                                      res.get("cpu_per_wall")))
            if res:
                print(f"  done {who:14s} repeat {r + 1}: {res['step_seconds_median']:.2f} s/epoch", file=sys.stderr)
                machine = res["machine"]
    from mrd_backend.machine import one_line
    if machine is None:
        print("every run failed (see above)", file=sys.stderr)
        return 1
    print(one_line(machine))
    print(f"{a.model}, {a.views} views, {a.dims} px, {a.spp} spp, {a.epochs} epochs (median of the epochs after the "
          f"first), {a.scene}, {a.envmap} light, untrained, no panel, no remesh, framing {a.framing}; "
          f"runs alternated, {a.repeats} each")
    ref = [x[0] for x in rows["research loop"]]
    print(f"{'loop':14s} {'s/epoch (each run)':>24s} {'speed-up':>9s} {'guiding share':>13s} {'peak RSS MB':>14s} "
          f"{'CPU/wall':>12s}")
    for who in ("research loop", "research", "fast"):
        secs = [x[0] for x in rows[who]]
        if not secs:
            continue
        speed = statistics.median(ref) / statistics.median(secs) if ref else float("nan")
        guide = statistics.fmean(x[2].get("backward/render_backward/guiding_setup", 0.0) for x in rows[who])
        print(f"{who:14s} {' / '.join(f'{s:.2f}' for s in secs):>24s} {speed:8.2f}x {100 * guide:12.0f}% "
              f"{' / '.join(f'{x[1]:.0f}' for x in rows[who]):>14s} "
              f"{' / '.join(f'{x[3]:.2f}' if x[3] is not None else '?' for x in rows[who]):>12s}")
    os.unlink(config_file)
    return 0


def step_spec(a) -> dict:
    return dict(checkout=a.research, extra=a.extra, work=tempfile.mkdtemp(prefix="mrd-research-loop-"),
                scene=a.scene, envmap=a.envmap, model=a.model, views=a.views, size=a.dims, spp=a.spp,
                epochs=a.epochs, remesh=[], seed=a.seed, sync=not a.no_sync, steady_guiding=a.steady_guiding,
                cpu_targets=a.cpu_targets)


def cmd_chamfer(a) -> int:
    rows = []
    for scene in a.scenes:
        for seed in a.seeds:
            for who in a.loops:
                if who == "research-loop":
                    spec = dict(checkout=a.research, extra=a.extra, work=tempfile.mkdtemp(prefix="mrd-research-loop-"),
                                scene=scene, envmap=a.envmap, model="mae", views=a.views, size=a.size, spp=a.spp,
                                epochs=a.epochs, remesh=a.remesh, seed=seed, sync=False, steady_guiding=False,
                                cpu_targets=a.cpu_targets)
                    res = research_child(spec)
                    if res:
                        rows.append(dict(scene=scene, seed=seed, loop=who, chamfer=res["chamfer"]["end"],
                                         chamfer_start=res["chamfer"]["start"], s_epoch=res["step_seconds_median"],
                                         peak=res["loop_peak_rss_mb"]))
                else:
                    spec = dict(scene=scene, envmap=a.envmap, views=a.views, size=a.size, spp=a.spp, epochs=a.epochs,
                                remesh=a.remesh, seed=seed, candidate=who, schedule="per_view",
                                out=tempfile.mkdtemp(prefix=f"mrd-{who}-"), config=RESEARCH_RIG if a.framing ==
                                "research" else {})
                    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_profiles.py"), "--child",
                                           json.dumps(spec)], capture_output=True, text=True,
                                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
                    res = _result(proc, f"ours {who} {scene} seed {seed}")
                    if res:
                        rows.append(dict(scene=scene, seed=seed, loop=who, chamfer=res["chamfer_end"],
                                         chamfer_start=res["chamfer_start"], s_epoch=res["epoch_seconds_median"],
                                         peak=res["peak_rss_mb"]))
                if res:
                    print(f"  done {scene} seed {seed} {who}: chamfer {rows[-1]['chamfer']:.5f}, "
                          f"{rows[-1]['s_epoch']:.2f} s/epoch", file=sys.stderr, flush=True)
    print(f"mae, {a.views} views {a.size}x{a.size}, {a.spp} spp, {a.epochs} epochs, remesh {a.remesh}, {a.envmap} "
          f"light, our runs framed as {a.framing}; chamfer as in our report (normalized by the target's bounding box)")
    print(f"{'scene':8s} {'seed':>4s} " + " ".join(f"{w + ' chamfer, s/epoch':>32s}" for w in a.loops))
    for scene in a.scenes:
        for seed in a.seeds:
            cells = []
            for w in a.loops:
                r = next((x for x in rows if (x["scene"], x["seed"], x["loop"]) == (scene, seed, w)), None)
                cells.append(f"{r['chamfer']:.6f}, {r['s_epoch']:.2f}" if r else "failed")
            print(f"{scene:8s} {seed:4d} " + " ".join(f"{c:>32s}" for c in cells))
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 2 and sys.argv[1] == "--child":
        return _child(sys.argv[2])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--research", default=DEFAULT_CHECKOUT, help="the research checkout (default %(default)s)")
    p.add_argument("--extra", default=DEFAULT_EXTRA, help="folder of the extra packages it needs (see `setup`)")
    sub = p.add_subparsers(dest="what", required=True)
    sub.add_parser("setup", help="print the commands that make the research checkout and its extra packages")

    def workload(s, positional=True):
        if positional:
            s.add_argument("scene", nargs="?", default="suzanne")
            s.add_argument("envmap", nargs="?", default="constant", help="constant, or an image file")
            s.add_argument("model", nargs="?", default="mae", choices=MODELS)
        s.add_argument("-n", "--views", type=int, default=4)
        s.add_argument("-d", "--dims", type=int, default=128, help="square render size")
        s.add_argument("--spp", type=int, default=16)
        s.add_argument("-e", "--epochs", type=int, default=3)
        s.add_argument("--seed", type=int, default=42)
        s.add_argument("--cpu-targets", choices=["tonemapped", "released"], default="tonemapped")
    s = sub.add_parser("step", help="time one research-loop run")
    workload(s)
    s.add_argument("--json", action="store_true")
    s.add_argument("--no-sync", action="store_true", help="no instrumentation: the loop exactly as it runs")
    s.add_argument("--steady-guiding", action="store_true",
                   help="apply OUR guiding set-up (mrd_backend/guiding.py) to its integrator, for comparison")
    b = sub.add_parser("side-by-side", help="research loop, our research, our fast, alternating")
    b.add_argument("model", nargs="?", default="mae", choices=MODELS)
    workload(b, positional=False)
    b.add_argument("--scene", default="suzanne")
    b.add_argument("--envmap", default="constant")
    b.add_argument("--repeats", type=int, default=2)
    b.add_argument("--framing", choices=["research", "ours"], default="research",
                   help="our runs with the research rig (5 units from the origin, start sphere at the origin; "
                        "default) or our default rig (2.8 bounding radii, as the issue's first table)")
    c = sub.add_parser("chamfer", help="final chamfer: research loop vs our research and fast profiles")
    c.add_argument("--scenes", nargs="+", default=["blob", "knot", "suzanne"])
    c.add_argument("--seeds", type=int, nargs="+", default=[42, 43])
    c.add_argument("--loops", nargs="+", default=["research-loop", "research", "fast"])
    c.add_argument("--envmap", default="constant")
    c.add_argument("--views", type=int, default=4)
    c.add_argument("--size", type=int, default=64)
    c.add_argument("--spp", type=int, default=8)
    c.add_argument("--epochs", type=int, default=20)
    c.add_argument("--remesh", type=int, nargs="*", default=[4, 8, 12, 16],
                   help="epochs after which to remesh (research suzanne: 100 200 300 400 of 500, scaled to 20)")
    c.add_argument("--cpu-targets", choices=["tonemapped", "released"], default="tonemapped")
    c.add_argument("--framing", choices=["research", "ours"], default="research",
                   help="our runs with the research rig and start (default) or with our default rig")
    c.add_argument("--json")
    a = p.parse_args(argv)
    if a.what == "setup":
        print(setup_commands(a.research, a.extra))
        return 0
    check_checkout(a.research, a.extra)
    if a.what == "step":
        spec = step_spec(a)
        out = run_research(spec)
        print(json.dumps(out, indent=1) if a.json else format_step(out))
        return 0
    if a.what == "side-by-side":
        a.steady_guiding, a.no_sync = False, False
        return cmd_side_by_side(a)
    return cmd_chamfer(a)


if __name__ == "__main__":
    sys.exit(main())
