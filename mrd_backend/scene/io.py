"""A SceneSpec as one .npz file (plain arrays + a JSON header): how the add-on hands a scene to the worker."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .cameras import CameraRig
from .environment import Environment
from ..atomic import atomic_write, npz_bytes
from ..errors import MRDError
from .spec import Material, SceneSpec

FORMAT = 1


def _split(value, key, arrays):
    """Arrays go to the npz under `key`; everything else stays in the JSON header."""
    if isinstance(value, np.ndarray) and value.ndim >= 1:
        arrays[key] = value
        return {"__array__": key}
    if isinstance(value, dict):
        return {k: _split(v, f"{key}.{k}", arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split(v, f"{key}.{i}", arrays) for i, v in enumerate(value)]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _join(value, arrays):
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return arrays[value["__array__"]]
        return {k: _join(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_join(v, arrays) for v in value]
    return value


def save_spec(spec: SceneSpec, path: str | Path) -> Path:
    path = Path(path)
    arrays: dict = {}
    header = {
        "format": FORMAT, "name": spec.name,
        "material": _split(asdict(spec.material), "material", arrays),
        "environment": _split(asdict(spec.environment), "environment", arrays),
        "cameras": _split(asdict(spec.cameras), "cameras", arrays),
        "integrator": spec.integrator, "extras": _split(spec.extras, "extras", arrays),
        "lights": [asdict(x) for x in spec.lights],
    }
    arrays["vertices"], arrays["faces"] = spec.vertices, spec.faces
    for k in ("uvs", "normals"):
        if getattr(spec, k) is not None:
            arrays[k] = getattr(spec, k)
    data = npz_bytes({"header": np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays})
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def load_spec(path: str | Path) -> SceneSpec:
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
        arrays = {k: data[k] for k in data.files}
        header = json.loads(bytes(arrays.pop("header")).decode())
    except FileNotFoundError:
        raise MRDError(f"scene file {path} does not exist") from None
    except Exception as exc:
        raise MRDError(f"{path} is not a scene file written by mrd ({type(exc).__name__})") from None
    if header.get("format") != FORMAT:
        raise MRDError(f"{path} has scene format {header.get('format')}, this mrd reads {FORMAT}: export it again")
    return SceneSpec(
        arrays["vertices"], arrays["faces"], arrays.get("uvs"), arrays.get("normals"),
        Material(**_join(header["material"], arrays)), Environment(**_join(header["environment"], arrays)),
        CameraRig(**_join(header["cameras"], arrays)), header.get("integrator"),
        _join(header.get("extras", {}), arrays), header.get("name", "scene"), header.get("lights", []))
