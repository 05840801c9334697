"""Helpers that put learnable activations into real models.

- :func:`swap_activations` replaces activation modules in place;
- :func:`activation_parameters` walks every learned activation parameter;
- :func:`activation_values` walks the same values by meaning (DP ReLU's and
  Dual Line's packed ``weight`` as ``pos_slope``, ``neg_slope``,
  ``mean_shift``): the study stores these, and its parameter plots read them;
- :func:`param_groups` keeps activation parameters out of weight decay.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from torch import Tensor, nn

from .activations._base import ParametricActivation
from .activations.factory import create_activation
from .activations.registry import is_activation, refuse_shape_changing, shape_changing_classes
from .errors import ConfigError

__all__ = ["activation_parameters", "activation_values", "param_groups", "swap_activations"]

Factory = Callable[[], nn.Module]


def _as_factory(to: str | Factory | nn.Module) -> Factory:
    if isinstance(to, str):
        create_activation(to)  # fail early, with suggestions, on a bad name
        return lambda: create_activation(to)
    if isinstance(to, nn.Module):
        # one template, deep-copied so that every site owns its parameters
        return lambda: copy.deepcopy(to)
    if callable(to):
        return to
    raise TypeError(
        "`to` must be an activation name, a zero-argument factory returning an nn.Module, "
        f"or an nn.Module to copy; got {type(to).__name__}"
    )


def swap_activations(
    model: nn.Module,
    to: str | Factory | nn.Module,
    *,
    match: type[nn.Module] | tuple[type[nn.Module], ...] = (nn.ReLU,),
) -> int:
    """Replace every activation module matching ``match`` inside ``model``, in place.

    Each attribute that holds a matching module gets its own new instance,
    so learnable parameters are never shared between sites, even where the
    original model registered one module object under several names.

    .. note::
        A single module that ``forward`` *calls* at several places (for
        example torchvision's ``BasicBlock.relu``) is one attribute, so it is
        replaced by one new instance that is still called at each place.
        Give those places separate modules first if they should learn
        separately.

    Args:
        model: the model to modify. ``model`` itself is never replaced.
        to: an activation name (``"dual_line"``), a zero-argument factory
            returning a module, or a module to deep-copy per site.
        match: module class or tuple of classes to replace. Default:
            ``(nn.ReLU,)``.

    Returns:
        The number of modules replaced.

    Example::

        >>> model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2), nn.ReLU())
        >>> learnact.swap_activations(model, "dual_line")
        2
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    classes = match if isinstance(match, tuple) else (match,)
    if not classes or not all(isinstance(c, type) and issubclass(c, nn.Module) for c in classes):
        raise TypeError(f"match must be an nn.Module subclass or a tuple of them, got {match!r}")
    if isinstance(to, str):
        refuse_shape_changing(to, "swap_activations")
    factory = _as_factory(to)
    targets = [
        (parent, key)
        for parent in model.modules()
        for key, child in parent._modules.items()
        if child is not None and isinstance(child, classes)
    ]
    made = [factory() for _ in targets]  # all checked before the model changes
    for new in made:
        if not isinstance(new, nn.Module):
            raise TypeError(f"the factory returned {type(new).__name__}, not an nn.Module")
        if isinstance(new, shape_changing_classes()):
            raise ConfigError(f"{type(new).__name__} changes the channel count, so "
                              "swap_activations cannot put it in place of another activation")
    for (parent, key), new in zip(targets, made, strict=True):
        setattr(parent, key, new)
    if not targets:
        names = ", ".join(c.__name__ for c in classes)
        warnings.warn(f"swap_activations: no {names} module found in the model", stacklevel=2)
    return len(targets)


def _activation_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """The outermost activation modules of ``model``, with their paths, in module order."""
    seen: list[str] = []
    for path, module in model.named_modules():
        # inside one already seen ("" is the model itself, when it is an activation)
        if any(p == "" or path == p or path.startswith(p + ".") for p in seen):
            continue
        if not is_activation(module):
            continue
        seen.append(path)
        yield path, module


def activation_parameters(model: nn.Module) -> Iterator[tuple[str, str, Tensor]]:
    """Yield ``(module_path, parameter_name, tensor)`` for every learnable activation parameter.

    Activation modules are those of registered classes and
    :class:`learnact.Learnable`; each is visited once, in module order, with
    its nested parameters (e.g. a recipe's ``base.weight``) named relative to
    it. The tensors are the live parameters (DP ReLU and Dual Line have one,
    ``weight``; see :func:`activation_values` for its parts by name): detach
    before storing.
    """
    for path, module in _activation_modules(model):
        for name, param in module.named_parameters():
            yield path, name, param


def activation_values(model: nn.Module) -> Iterator[tuple[str, str, Tensor]]:
    """Yield ``(module_path, value_name, tensor)`` for every learned activation value, by meaning.

    The same values as :func:`activation_parameters`, but a packed module's
    ``weight`` (DP ReLU, Dual Line) comes as its rows ``pos_slope``,
    ``neg_slope`` and ``mean_shift`` (its ``named_values()``), so every
    activation's values carry the names of the paper's parameters. Nested
    values are named relative to the activation (``base.weight``). The tensors
    are live: detach before storing.

    Example::

        >>> [(p, n) for p, n, _ in learnact.activation_values(nn.Sequential(learnact.DPReLU()))]
        [('0', 'pos_slope'), ('0', 'neg_slope')]
    """
    for path, module in _activation_modules(model):
        for prefix, sub in module.named_modules():
            own = (sub.named_values() if isinstance(sub, ParametricActivation)
                   else sub.named_parameters(recurse=False))
            for name, value in own:
                yield path, f"{prefix}.{name}" if prefix else name, value


def param_groups(
    model: nn.Module, weight_decay: float, activation_weight_decay: float = 0.0
) -> list[dict[str, Any]]:
    """Optimizer parameter groups that keep activation parameters out of weight decay.

    Args:
        model: the model whose trainable parameters to group.
        weight_decay: decay for every parameter that is not an activation's.
        activation_weight_decay: decay for activation parameters. Default: 0,
            because decay pulls slopes and mean shifts towards zero.

    Returns:
        A list of ``{"params", "weight_decay", "name"}`` dicts for
        ``torch.optim`` (empty groups are omitted). Names are ``"default"`` and
        ``"activation"``.

    Example::

        >>> opt = torch.optim.AdamW(learnact.param_groups(model, weight_decay=0.1))
    """
    for label, value in (("weight_decay", weight_decay),
                         ("activation_weight_decay", activation_weight_decay)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{label} must be a non-negative number, got {value!r}")
    act_ids = {id(p) for _, _, p in activation_parameters(model)}
    default, act = [], []
    for param in model.parameters():
        if param.requires_grad:
            (act if id(param) in act_ids else default).append(param)
    groups = [
        {"params": default, "weight_decay": float(weight_decay), "name": "default"},
        {"params": act, "weight_decay": float(activation_weight_decay), "name": "activation"},
    ]
    return [g for g in groups if g["params"]]
