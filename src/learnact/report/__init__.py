"""Reports: the paper's figures and tables from a results database, plus statistics.

:func:`make_report` reads the database once and writes, for every
(dataset, model) task: a heatmap, ranking tables (Markdown and CSV) with a
generated summary, the learning-rate tables, parameter-position plots, block
box plots, response regions and a paired comparison against ReLU; across
tasks, a Friedman test with a critical-difference diagram; and one
self-contained ``index.html``. Needs the ``plot`` extra (matplotlib, pandas).

Plot functions live in :mod:`learnact.report.figures` and take data frames;
:mod:`learnact.report.curves` draws response curves for ``learnact plot``.
"""

from __future__ import annotations

from ..errors import ReportError
from .make import ReportResult, make_report

__all__ = ["ReportError", "ReportResult", "make_report"]
