"""The study: the typed configuration (``config``, ``entries``), the driver that
checks and starts it (``driver``), the executors (``executors``), the worker that
trains one run (``worker``) and the SQLite store (``store``)."""

from .config import StudyConfig, list_presets, load_preset, resolve_activations
from .driver import run_study
from .store import Store, StoreError
from .worker import Event, RunSpec, expand_runs

__all__ = [
    "Event",
    "RunSpec",
    "Store",
    "StoreError",
    "StudyConfig",
    "expand_runs",
    "list_presets",
    "load_preset",
    "resolve_activations",
    "run_study",
]
