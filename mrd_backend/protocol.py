"""The worker protocol, the one copy both ends read: `mrd_backend.worker` writes it and the add-on's client.py reads
it (the client loads this file by path, so it must stay stdlib-only and import nothing from the package).

The worker writes one JSON object a line; every object has "event", one of EVENTS. Strict JSON has no NaN or
infinity, so `json_line` turns them into null rather than failing or writing what a strict reader rejects.
"""
from __future__ import annotations

import json

PROTOCOL = 1                  # bumped when an event's meaning changes; the client refuses a worker that differs
STOP_FILE = "STOP"            # created in the run folder to ask the worker to stop after the current step
STEPS_DIR = "steps"           # the run folder's per-step arrays (steps/step_NNNNNN.npz)
EVENTS = ("hello", "step", "log", "done", "error", "check")


def plain(x):
    """numpy scalars and arrays, paths: to JSON; anything else: its string (never an object)."""
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:
        return x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    return str(x)


def finite(x) -> float | None:
    """A number as a float, or None when it is NaN, infinite or not a number (JSON has no NaN or infinity)."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if x == x and abs(x) != float("inf") else None


def no_nan(x):
    """NaN and infinities, at any depth of dicts and lists, as None (null)."""
    if isinstance(x, float):
        return x if x == x and abs(x) != float("inf") else None
    if isinstance(x, dict):
        return {k: no_nan(v) for k, v in x.items()}
    if isinstance(x, list):
        return [no_nan(v) for v in x]
    return x


def json_line(event: str, **fields) -> str:
    """One protocol line (without its newline): plain JSON, NaN/inf as null."""
    try:
        return json.dumps({"event": event, **fields}, default=plain, allow_nan=False)
    except ValueError:  # NaN/inf somewhere (strict JSON has neither): send null instead
        return json.dumps(no_nan(json.loads(json.dumps({"event": event, **fields}, default=plain))))
