"""Training: the paper's recipe (Adam + one-cycle), the LR finder and metrics."""

from .loop import Diverged, EpochMetrics, TrainSettings, evaluate, fit, make_optimizer
from .lr_find import SUGGESTIONS, LRFindResult, lr_find, minimum, minimum3, steep, valley

__all__ = [
    "SUGGESTIONS",
    "Diverged",
    "EpochMetrics",
    "LRFindResult",
    "TrainSettings",
    "evaluate",
    "fit",
    "lr_find",
    "make_optimizer",
    "minimum",
    "minimum3",
    "steep",
    "valley",
]
