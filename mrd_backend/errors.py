"""The one exception type users see: a one-line message that says what is wrong and what to do."""


class MRDError(Exception):
    """A problem with the user's input or environment, reported as one line (no traceback)."""


class Cancelled(Exception):
    """Raised inside a run when the caller asked it to stop; the run keeps what it wrote."""
