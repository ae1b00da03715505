"""The one exception type users see: a one-line message that says what is wrong and what to do."""


class MRDError(Exception):
    """A problem with the user's input or environment, reported as one line (no traceback)."""


class Cancelled(Exception):
    """Raised inside a run when the caller asked it to stop; the run keeps what it wrote."""


class InternalError(MRDError):
    """A bug or an unexpected library failure: one line for the user, the traceback in the run's error.log."""


# Exit statuses of `mrd` (documented in the README): scripts can tell a cancelled run from a finished one.
EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_CANCELLED = 0, 1, 2, 3
