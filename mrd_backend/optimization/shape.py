"""What a shape run optimizes and how it stays valid: Large Steps (Nicolet et al. 2021) over the vertex positions,
a uniform Adam, scheduled remeshing with learning-rate decay, and optional regularizers rebuilt after each remesh."""
from __future__ import annotations

import drjit as dr
import numpy as np

from ..errors import MRDError
from ..scene.meshes import manifold_problems, remesh
from .checkpoint import load_optimizer_arrays, optimizer_arrays, optimizer_values
from .regularizers import Regularizers

KEY = "shape.vertex_positions"


class ShapeParameters:
    kind = "shape"

    def __init__(self, mi, params, vertices, faces, cfg, log=print):
        self.mi, self.params, self.cfg, self.log = mi, params, cfg, log
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
