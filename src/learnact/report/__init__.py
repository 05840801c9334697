"""Reports: the paper's figures and tables from a results database, plus statistics.

:func:`make_report` reads the database once and writes, for every
(dataset, model) task: a heatmap, ranking tables (Markdown and CSV) with a
generated summary, the learning-rate tables, parameter-position plots, block
box plots, response regions, a paired comparison against ReLU, a Friedman
test over seeds with a critical-difference diagram, and ``claims.md`` (the
paper's claims as statistics with verdicts, :mod:`learnact.report.claims`);
across tasks, a Friedman test with a critical-difference diagram and each
activation's learning-rate range; and ``index.html``, which links the figures
(or, with ``embed_figures``, holds them and stands alone). Needs
the ``plot`` extra (matplotlib, pandas).

:class:`learnact.report.tensorboard.TensorBoardLogger` is a progress callback
for :func:`learnact.study.run_study` that writes each run's epochs as
TensorBoard scalars (the ``tensorboard`` extra).

Plot functions live in :mod:`learnact.report.figures` and take data frames;
:mod:`learnact.report.curves` draws response curves for ``learnact plot``.
"""

from __future__ import annotations

from ..errors import ReportError
from .make import ReportResult, make_report

__all__ = ["ReportError", "ReportResult", "make_report"]
