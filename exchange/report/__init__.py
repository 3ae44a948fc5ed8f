"""The run report: report.json → report.md, a self-contained report.html, charts/*.png.

Pure functions of the report dict (documented in ``docs/report-schema.md``): no
network, no clock, the same bytes for the same input. ``tongban report DIR``
calls :func:`render_report` on a run directory to re-render it.
"""

from __future__ import annotations

from exchange.report.render import SCHEMA_VERSION, load_report, render_report

__all__ = ["SCHEMA_VERSION", "load_report", "render_report"]
