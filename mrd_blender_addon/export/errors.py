"""The one error an export raises."""


class ExportError(Exception):
    """Bad input for an export (no mesh, an unreadable image, ...): one line that says what to do."""
