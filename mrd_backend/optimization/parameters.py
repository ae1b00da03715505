"""What the run loop optimizes, as one declared interface: `ShapeParameters` (shape.py) and `MaterialParameters`
(material.py) both implement all of it, so the loop (loop.py) and the recorder (outputs/recorder.py) never ask which
kind they hold. A third kind of metamer is a third class with these methods, named in `parameter_class`."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Parameters(Protocol):
    kind: str            # "shape" or "material": the config's mode
    lr: float            # the learning rate now (a remesh or a schedule may lower it)
    gradient_keys: list[str]  # the Mitsuba parameters optimized (forward-gradient images differentiate along them)
    scene: object        # the Mitsuba scene the loop renders, and its traversed parameters
    params: object

    # -- set-up (class methods: they run before the targets are rendered and the parameters are built) ------------
    @classmethod
    def integrator(cls, spec, cfg) -> int:
        """Sets `spec.integrator` for this kind of run; returns the samples per pixel of the backward pass."""

    @classmethod
    def integrator_note(cls, cfg, spp_grad: int) -> str | None:
        """A line for the log about the integrator, or None."""

    @classmethod
    def build(cls, mi, spec, cfg, log, start=None) -> "Parameters":
        """The parameters at their start values, in a loaded scene (`start`: the caller's start mesh, if any)."""

    # -- the loop ---------------------------------------------------------------------------------------------------
    def apply(self) -> None:
        """Pushes the optimizer's variables into the scene before a render."""

    def regularization(self):
        """A Dr.Jit term added to the loss, or None."""

    def step(self) -> None:
        """One optimizer step on the accumulated gradient (and whatever keeps the values valid)."""

    def end_of_epoch(self, epoch: int) -> bool:
        """After each epoch (remeshing, learning-rate schedules); True when the topology changed."""

    def state(self) -> dict[str, np.ndarray]:
        """The optimized values as numpy arrays (the best state, the last good state)."""

    def restore(self, state: dict) -> None: ...

    def is_finite(self) -> bool: ...

    # -- checkpoints (checkpoint.py) --------------------------------------------------------------------------------
    def checkpoint(self) -> dict[str, np.ndarray]:
        """Arrays that rebuild this state exactly, optimizer moments included."""

    def load_checkpoint(self, arrays: dict) -> None: ...

    # -- what a run reports (outputs/recorder.py) --------------------------------------------------------------------
    def start_metrics(self) -> dict:
        """Measures of the start state against the target, for report["*"]["start"] (shape: chamfer)."""

    def log_values(self, state: dict, remeshed: bool) -> dict:
        """This kind's part of a step's report entry."""

    def values(self, state: dict) -> dict:
        """This kind's fields of a StepResult (vertices and faces, or textures and material)."""

    def outputs_due(self, epoch: int, remeshed: bool, last: bool) -> bool:
        """Whether `write_outputs` runs at this step."""

    def write_start(self, folder) -> None:
        """Files the run folder gets before the first step (shape: the target and start meshes)."""

    def write_outputs(self, folder, epoch: int, state: dict) -> dict:
        """A step's files (PLY, textures): report name -> path relative to the run folder."""

    def end_state(self, last_good: dict, interrupted: bool) -> dict:
        """The state the final renders show, after a cancel or a failure too."""

    def write_final(self, folder, state: dict) -> None:
        """The final files (meshes/final.ply, the textures and material descriptions)."""

    def final_metrics(self, state: dict, start: dict) -> dict:
        """What the report gets at the end (chamfer start/end, the material's errors); `start`: the start
        evaluation (start_metrics() with loss and similarity)."""

    def final_mesh(self, state: dict) -> tuple:
        """(vertices, faces) for RunResult, or (None, None)."""


def parameter_class(mode: str) -> type:
    """The Parameters implementation of a run mode. Imported here, not at the top: shape.py and material.py load
    Dr.Jit, which this module's readers (the recorder's type hints, tests) do not need."""
    if mode == "shape":
        from .shape import ShapeParameters
        return ShapeParameters
    from .material import MaterialParameters
    return MaterialParameters


def resolved_config(cfg):
    """The config with the defaults that depend on the kind of run (a bundled material scene is a material run)
    and on the model's native size filled in."""
    from ..objectives import objective_class
    from ..scenes import materials as material_scenes
    return cfg.resolved(cfg.scene in material_scenes.names() or cfg.mode == "material",
                        objective_class(cfg.model).native_size)
