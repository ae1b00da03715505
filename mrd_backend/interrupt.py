"""SIGTERM and SIGHUP (sent by `timeout`, job schedulers, `docker stop`, a closed terminal) end a command-line run
the way Ctrl+C does: the step in progress is abandoned, everything written so far is kept, the final results and
the report are written with status `cancelled`, and `mrd optimize --resume RUN_DIR` continues it. A second signal
while the run writes its results is ignored (they take seconds); a third ends the process at once."""
from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager

from .errors import EXIT_CANCELLED, Cancelled

SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))
RECEIVED: list = []  # the signals of the current command-line run


def cancelled_by(exc: BaseException) -> bool:
    """Whether `exc` is a cancellation, possibly wrapped: a signal that lands inside a Dr.Jit callback (the
    torch bridge of the backward pass) comes back as Dr.Jit's own error with the Cancelled as its cause."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, (Cancelled, KeyboardInterrupt)):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return bool(RECEIVED)


@contextmanager
def cancel_on_signals():
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    received = RECEIVED
    received.clear()

    def handler(signum, frame):
        received.append(signum)
        if len(received) == 1:
            raise Cancelled(f"received {signal.Signals(signum).name}")
        if len(received) >= 3:
            os._exit(EXIT_CANCELLED)

    old = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        received.clear()  # a later error in this process is not this run's cancel
