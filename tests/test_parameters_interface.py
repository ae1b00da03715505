"""Shape and material parameters implement the loop's whole interface (optimization/parameters.py), so the loop and
the recorder never ask which kind they hold."""
from __future__ import annotations

import inspect

from mrd_backend.optimization.material import MaterialParameters
from mrd_backend.optimization.parameters import Parameters
from mrd_backend.optimization.shape import ShapeParameters


def _members(cls) -> set[str]:
    return {n for n in {*vars(cls), *getattr(cls, "__annotations__", {})} if not n.startswith("_")}


def test_both_kinds_implement_every_member_with_its_arguments():
    wanted = _members(Parameters)
    assert {"apply", "step", "regularization", "checkpoint", "load_checkpoint", "write_outputs", "final_metrics",
            "log_values", "values", "end_of_epoch", "gradient_keys", "build"} <= wanted
    for cls in (ShapeParameters, MaterialParameters):
        for name in sorted(wanted - {"scene", "params", "lr"}):   # set per instance in __init__ / build
            assert hasattr(cls, name), f"{cls.__name__} lacks {name}"
            ours, theirs = getattr(Parameters, name, None), getattr(cls, name)
            if callable(ours) and callable(theirs):
                want = list(inspect.signature(ours).parameters)
                have = list(inspect.signature(theirs).parameters)
                assert len(have) >= len(want), f"{cls.__name__}.{name}{inspect.signature(theirs)}"
    assert ShapeParameters.kind == "shape" and MaterialParameters.kind == "material"
