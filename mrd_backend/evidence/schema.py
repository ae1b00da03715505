"""The report.json schema (mrd_backend/data/report.schema.json, JSON Schema draft 2020-12) and its checks."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from ..errors import MRDError

REPORT_VERSION = 1
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "data" / "report.schema.json"


@lru_cache(maxsize=1)
def report_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def _where(path) -> str:
    return "/".join(str(p) for p in path) or "(top level)"


def validate_report(report) -> None:
    """Raises MRDError (one line) when `report` is not a version-1 MRD report that matches the schema."""
    if not isinstance(report, dict):
        raise MRDError(f"a report must be a JSON object, got {type(report).__name__}: give the report.json of a run")
    version = report.get("version")
    if version != REPORT_VERSION:
        which = "has no version" if version is None else f"is version {version!r}"
        raise MRDError(f"the report {which}, this mrd reads version {REPORT_VERSION}: it was written by another "
                       "version of mrd; run it again with this one or open it with the mrd that wrote it")
    try:
        import jsonschema
    except ImportError:
        raise MRDError("checking reports needs the jsonschema package: pip install jsonschema") from None
    validator = jsonschema.Draft202012Validator(report_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(report))
    if error is not None:
        msg = " ".join(str(error.message).split())
        if len(msg) > 160:
            msg = msg[:157] + "..."
        raise MRDError(f"the report does not match the report schema at {_where(error.absolute_path)}: {msg}")


def load_report(run_dir: str | Path, validate: bool = True) -> dict:
    """The report.json of a run folder; a folder that is not one (or an unreadable/older report) -> MRDError."""
    run_dir = Path(run_dir)
    p = run_dir / "report.json"
    if not run_dir.exists():
        raise MRDError(f"{run_dir} does not exist: give a run folder (one written by `mrd optimize`, with report.json)")
    if not run_dir.is_dir():
        raise MRDError(f"{run_dir} is not a run folder but a file: give the folder that holds report.json")
    if not p.is_file():
        raise MRDError(f"{run_dir} is not a run folder (no report.json): give a folder written by `mrd optimize`")
    try:
        report = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise MRDError(f"cannot read {p} ({type(exc).__name__}): the run may still be writing it; try again") from None
    if validate:
        validate_report(report)
    elif not isinstance(report, dict) or report.get("version") != REPORT_VERSION:
        validate_report(report)  # at least the version check
    return report
