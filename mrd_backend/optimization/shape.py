"""What a shape run optimizes and how it stays valid: Large Steps (Nicolet et al. 2021) over the vertex positions,
a uniform Adam, scheduled remeshing with learning-rate decay, and optional regularizers rebuilt after each remesh."""
from __future__ import annotations

import drjit as dr
import numpy as np

from ..config import gradient_spp, integrator_settings
from ..errors import MRDError
from ..scene.meshes import chamfer, check_mesh, icosphere, manifold_problems, remesh
from ..scenes import load_target_mesh
from .checkpoint import load_optimizer_arrays, optimizer_arrays, optimizer_values
from .regularizers import Regularizers

KEY = "shape.vertex_positions"


def start_mesh(cfg, spec, start=None) -> tuple[np.ndarray, np.ndarray]:
    """The mesh a shape run starts from: the caller's, an icosphere (in the target's bounds, or at the origin as in
    the research code), the target itself (the reconstruction control) or a bundled or file mesh."""
    if start is not None:
        v, f = start
    elif cfg.start == "icosphere" and cfg.start_placement == "origin":
        v, f = icosphere(cfg.start_subdivisions)   # research: ico_10k.ply at the origin, its file scale
    elif cfg.start == "icosphere":
        center, radius = spec.bounds()
        v, f = icosphere(cfg.start_subdivisions)
        v = (v * 0.7 * radius + center).astype(np.float32)
    elif cfg.start == "target":  # the reconstruction control: start at the answer
        v, f = spec.vertices, spec.faces
    else:
        v, f = load_target_mesh(cfg.start)
    check_mesh(v, f, "start mesh", closed=True)
    return np.asarray(v, np.float32), np.asarray(f, np.int32)


class ShapeParameters:
    """The Parameters interface (parameters.py) for a mesh."""
    kind = "shape"
    gradient_keys = [KEY]

    # -- set-up ---------------------------------------------------------------------------------------------------
    @classmethod
    def integrator(cls, spec, cfg) -> int:
        spec.integrator = integrator_settings(cfg.integrator, cfg.spp)
        return gradient_spp(cfg.integrator, cfg.spp)

    @classmethod
    def integrator_note(cls, cfg, spp_grad: int) -> str:
        if cfg.integrator == "fast":
            return (f"integrator profile 'fast': no indirect-silhouette (shadow-boundary) gradients, gradients at "
                    f"{spp_grad} spp; 5-14x faster per epoch on a CPU at equal chamfer (docs/speed.md); "
                    "--integrator research for the research code's settings")
        return ("integrator profile 'research': the research code's direct_projective settings (octree guiding; "
                "--integrator fast is 5-14x faster on a CPU)")

    @classmethod
    def build(cls, mi, spec, cfg, log=print, start=None) -> "ShapeParameters":
        v, f = start_mesh(cfg, spec, start)
        scene = spec.load(vertices=v, faces=f)
        p = cls(mi, mi.traverse(scene), v, f, cfg, log)
        p.scene, p.spec = scene, spec
        return p

    def __init__(self, mi, params, vertices, faces, cfg, log=print):
        self.mi, self.params, self.cfg, self.log = mi, params, cfg, log
        self.scene = self.spec = None   # set by build()
        self.lr = cfg.lr
        self.regs = Regularizers(vertices, faces, {"laplacian": cfg.reg_laplacian, "edge": cfg.reg_edge,
                                                   "area": cfg.reg_area, "arap": cfg.reg_arap})
        # the mesh of the last reset: the regularizers' rest mesh, and the one Large Steps' operator was built from
        self.rest = (np.asarray(vertices, np.float32), np.asarray(faces, np.int32))
        self._reset(vertices, faces)

    def _reset(self, vertices, faces):
        mi = self.mi
        self.faces = np.asarray(faces, np.int32)
        self.params[KEY] = dr.ravel(mi.Point3f(np.asarray(vertices, np.float32).T))
        self.params["shape.faces"] = dr.ravel(mi.Vector3u(self.faces.astype(np.uint32).T))
        self.params.update()
        self.ls = mi.ad.LargeSteps(self.params[KEY], self.params["shape.faces"], self.cfg.step_lambda)
        self.opt = mi.ad.Adam(lr=self.lr, uniform=True)  # moments reset at every remesh, as in the research code
        self.opt["u"] = self.ls.to_differential(self.params[KEY])

    # -- the loop's interface ---------------------------------------------------------------------------------
    def apply(self):
        """Pushes the optimized variable into the scene (once per render: Large Steps' solve is cheap)."""
        self.params[KEY] = self.ls.from_differential(self.opt["u"])
        self.params.update()

    def regularization(self):
        return self.regs(self.params[KEY]) if self.regs else None

    def step(self):
        self.opt.step()

    def vertices(self) -> np.ndarray:
        v = self.ls.from_differential(self.opt["u"])
        return np.asarray(dr.detach(v), np.float32).reshape(-1, 3)

    def state(self) -> dict:
        return {"vertices": self.vertices(), "faces": self.faces.copy()}

    def is_finite(self) -> bool:
        """False once the mesh has diverged: NaN/inf, or coordinates so large (a huge --lr) that Mitsuba's
        float32 scene fails before they overflow."""
        v = self.vertices()
        return bool(np.isfinite(v).all() and np.abs(v).max() < 1e15)

    def restore(self, state: dict):
        self._reset(state["vertices"], state["faces"])
        self._rebuild_regularizers(state["vertices"], state["faces"])

    def _rebuild_regularizers(self, vertices, faces):
        self.rest = (np.asarray(vertices, np.float32), np.asarray(faces, np.int32))
        self.regs.rebuild(vertices, faces)

    # -- checkpoints (checkpoint.py) ----------------------------------------------------------------------------
    def checkpoint(self) -> dict:
        """Arrays that rebuild this state exactly: topology, Large Steps' variable and Adam's moments, the
        regularizers' rest mesh and the learning rate."""
        return {"vertices": self.vertices(), "faces": self.faces, "rest_vertices": self.rest[0],
                "rest_faces": self.rest[1], "lr": np.float64(self.lr), **optimizer_arrays(self.opt)}

    def load_checkpoint(self, arrays: dict):
        self.lr = float(arrays["lr"])
        # The operator from the mesh it was built from at the last reset (start, remesh or restore): Large Steps
        # orders its variable by those vertex positions (np.unique), so another mesh would scramble `u`.
        self._reset(arrays["rest_vertices"], arrays["rest_faces"])
        self.opt["u"] = type(self.opt["u"])(np.asarray(optimizer_values(arrays)["u"], np.float32))
        load_optimizer_arrays(self.opt, arrays)
        self.apply()
        self._rebuild_regularizers(arrays["rest_vertices"], arrays["rest_faces"])

    def end_of_epoch(self, epoch: int) -> bool:
        """Remeshes after the scheduled epochs; True when it did (topology changed)."""
        if epoch not in self.cfg.remesh:
            return False
        v, f = remesh(self.vertices(), self.faces)
        problems = manifold_problems(v, f)
        if problems:
            raise MRDError(f"remeshing after epoch {epoch} gave a broken surface ({problems}): "
                           "lower --lr or -l, or remesh earlier")
        self.lr *= self.cfg.remesh_decay
        self.log(f"remeshed after epoch {epoch}: {len(v)} vertices, lr {self.lr:.4g}")
        self._reset(v, f)
        self._rebuild_regularizers(v, f)
        return True

    # -- what a run reports -----------------------------------------------------------------------------------------
    def start_metrics(self) -> dict:
        return chamfer(self.state()["vertices"], self.faces, self.spec.vertices, self.spec.faces)

    def log_values(self, state: dict, remeshed: bool) -> dict:
        return {"n_vertices": int(len(state["vertices"])), "lr": self.lr, "remeshed": remeshed}

    def values(self, state: dict) -> dict:
        return {"vertices": state["vertices"], "faces": state["faces"]}

    def outputs_due(self, epoch: int, remeshed: bool, last: bool) -> bool:
        return epoch % self.cfg.mesh_every == 0 or remeshed or last

    def write_start(self, folder) -> None:
        folder.write_mesh("meshes/target.ply", self.spec.vertices, self.spec.faces, "target_mesh")
        folder.write_mesh("meshes/start.ply", *self.rest)

    def write_outputs(self, folder, epoch: int, state: dict) -> dict:
        return {"mesh": folder.rel(folder.write_mesh(f"meshes/step_{epoch:06d}.ply", state["vertices"],
                                                     state["faces"]))}

    def end_state(self, last_good: dict, interrupted: bool) -> dict:
        """The last good mesh: after a cancel or a failure the scene may hold a half-stepped or NaN one."""
        if interrupted:
            self.restore(last_good)
        return last_good

    def write_final(self, folder, state: dict) -> None:
        folder.write_mesh("meshes/final.ply", state["vertices"], state["faces"])

    def final_metrics(self, state: dict, start: dict) -> dict:
        end = chamfer(state["vertices"], state["faces"], self.spec.vertices, self.spec.faces)
        return {"chamfer": {"start": start["chamfer"], "end": end["chamfer"]},
                "normal_consistency": {"start": start["normal_consistency"], "end": end["normal_consistency"]}}

    def final_mesh(self, state: dict) -> tuple:
        return state["vertices"], state["faces"]
