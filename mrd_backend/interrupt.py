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


@contextmanager
def cancel_on_signals():
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    received = []

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
