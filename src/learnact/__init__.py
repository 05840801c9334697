"""learnact: learnable-parameter activation functions for PyTorch.

Implements "Learn-able parameter guided Activation Functions" (arXiv
1912.10752): DP ReLU, Dual Line and the general recipe that gives any
activation a learnable positive slope and mean shift, plus a registry of
activation functions (``learnact.list_activations()``) and helpers to put them
into real models.

Example::

    import learnact, torch
    act = learnact.DualLine()
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU())
    learnact.swap_activations(model, "dual_line")
"""

from . import functional
from .activations import ActivationSpec, DPReLU, DualLine, Learnable, create_activation
from .activations.registry import (
    get_spec,
    is_activation,
    list_activations,
    register_activation,
)
from .errors import ConfigError, DatasetError, LearnactError, ReportError, StoreError
from .model_tools import activation_parameters, activation_values, param_groups, swap_activations

# the one place the version is written (pyproject.toml reads it; see CHANGELOG.md)
__version__ = "0.3.0.dev0"

__all__ = [
    "ActivationSpec",
    "ConfigError",
    "DPReLU",
    "DatasetError",
    "DualLine",
    "Learnable",
    "LearnactError",
    "ReportError",
    "StoreError",
    "__version__",
    "activation_parameters",
    "activation_values",
    "create_activation",
    "functional",
    "get_spec",
    "is_activation",
    "list_activations",
    "param_groups",
    "register_activation",
    "swap_activations",
]
