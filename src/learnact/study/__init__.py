"""The study: configs and presets, run expansion, the SQLite store and the runner."""

from .config import StudyConfig, list_presets, load_preset, resolve_activations
from .run import run_study
from .runner import Event, RunSpec, expand_runs
from .store import Store, StoreError

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
