"""Render seeds in disjoint streams: no render of a run ever reuses the noise of another kind of render.

Mitsuba's `seed` is a 32-bit unsigned integer. A seed here is `STREAMS * (base + index) + stream` modulo 2**32, with
STREAMS a power of two: its residue modulo STREAMS is the stream, whatever the base (the run's --seed) and the
index, so two streams can never produce the same seed (2**32 is a multiple of STREAMS, so the wrap keeps the
residue). Within a stream, indices below 2**32 / STREAMS give distinct seeds.
"""
from __future__ import annotations

STREAMS = 16
TARGET = 0              # the targets of the optimization rig, one index per view
OPTIMIZE = 1            # renders inside the loop: index 2 * (epoch * views + view) (+1 for a second render)
EVALUATE = 2            # start/final evaluation renders: index view (+ views for a second render)
CONTROL = 3             # the rotated control: optimization rig, then held-out rig
HELDOUT_TARGET = 4      # held-out rig: the target reference (k = 0) and its independent re-renders (k >= 1)
HELDOUT_RESULT = 5      # held-out rig: the result
TURNTABLE = 6           # turntable GIFs
NULL = 7                # `mrd null` objects
NAMES = {TARGET: "target", OPTIMIZE: "optimize", EVALUATE: "evaluate", CONTROL: "control",
         HELDOUT_TARGET: "heldout_target", HELDOUT_RESULT: "heldout_result", TURNTABLE: "turntable", NULL: "null"}


def render_seed(stream: int, index: int, base: int = 0) -> int:
    """The seed of render number `index` of `stream` in a run whose --seed is `base`."""
    if not 0 <= int(stream) < STREAMS:
        raise ValueError(f"stream must be in [0, {STREAMS}), got {stream}")
    return (STREAMS * (int(base) + int(index)) + int(stream)) % (1 << 32)


def stream_of(seed: int) -> int:
    """Which stream a seed belongs to (the proof of disjointness, as a function)."""
    return int(seed) % STREAMS
