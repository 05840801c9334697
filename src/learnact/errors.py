"""learnact's exception types: user-facing problems, told apart from bugs.

Every error that a user can cause and fix (a bad flag, setting or environment
variable, a missing or corrupt dataset, a database that is not learnact's, an
empty report) is a :class:`LearnactError`. The command line prints these as one
line and exits with 2; anything else is a bug and keeps its traceback (exit 1).

:class:`ConfigError` also derives from ``ValueError``, so code that catches
``ValueError`` around learnact's configuration keeps working.

This module imports nothing from torch or the rest of learnact, so the data
parsers that use it can be loaded on their own (the memory-limit tests do).
"""

from __future__ import annotations

__all__ = ["ConfigError", "DatasetError", "LRFinderDiverged", "LearnactError", "ReportError",
           "StoreError"]


class LearnactError(Exception):
    """Base class of every error a user can cause and fix."""


class ConfigError(LearnactError, ValueError):
    """A setting, flag, preset or environment variable is invalid."""


class DatasetError(LearnactError):
    """A dataset could not be found or read; the message says where and why."""


class StoreError(LearnactError):
    """The database cannot be opened or is not a learnact results database."""


class ReportError(LearnactError):
    """The database cannot be reported on (missing, unreadable or empty)."""


class LRFinderDiverged(LearnactError):
    """The LR finder's loss curve never gave a finite suggestion (it diverged at once)."""

    def __init__(self, method: str) -> None:
        super().__init__(f"the LR finder diverged before its {method!r} rule found a rate; "
                         "give a fixed --lr")
        self.method = method
