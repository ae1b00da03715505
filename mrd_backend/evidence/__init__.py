"""Metamer evidence: similarity measures, RSA, pixel measures, the cross-model panel, the held-out control, the null
distribution, Bayes factors and permutation tests, the verdict, the report schema, report.html and `mrd compare`.

What the run loop calls (see docs/evidence.md):
- `Panel(models, weights, ...)`, `panel.set_targets(targets)`, `panel.evaluate(images)` (per step in pixel runs);
- `heldout.control_spec(spec)`, `heldout.heldout_rig(spec)` for the control and held-out renders;
- `end_of_run(EvidenceInputs(...))` -> report["evidence"];
- `validate_report(report)`, `write_report_html(run_dir)`;
The commands `mrd null` and `mrd compare` live in mrd_backend/cli/evidence.py.
Heavy libraries (scipy, matplotlib, torch, flip) are imported only when used.
"""
from .compare import write_compare
from .end_of_run import EvidenceInputs, end_of_run
from .html import write_report_html
from .null import NullDistribution, find_null, load_null
from .panel import DEFAULT_MODELS, Panel, step_panel
from .schema import load_report, validate_report

__all__ = ["EvidenceInputs", "end_of_run", "step_panel", "Panel", "DEFAULT_MODELS", "NullDistribution", "load_null",
           "find_null", "write_compare", "write_report_html", "validate_report", "load_report"]
