"""The objective registry. Adding a model = one module with an Objective subclass + one line in catalogue.py.

Models import torch, timm, open_clip and lpips inside their functions (lazy on purpose): listing the models, the
CLI's start and the worker's --check stay free of torch until a network is built."""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..errors import MRDError
from .catalogue import MODELS

if TYPE_CHECKING:  # the add-on imports this package for catalogue.py: base.py stays out of its import
    from .base import Objective

# name -> "module:Class" (imported only when used, so the CLI and the add-on stay light); catalogue.py is the list
REGISTRY = {m.name: m.where for m in MODELS}


def objective_names() -> list[str]:
    return list(REGISTRY)


def objective_class(name: str) -> type[Objective]:
    if name not in REGISTRY:
        raise MRDError(f"unknown model {name!r}: use one of {', '.join(REGISTRY)}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def build_objective(name: str, **options) -> Objective:
    """Constructs objective `name`; every bad option (unknown model, missing weights, wrong checkpoint, bad render
    size, --classify without a classifier head) is an MRDError raised here, before anything is rendered."""
    return objective_class(name)(**options)
