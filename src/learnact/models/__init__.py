"""Models that take an activation factory and expose their activation sites."""

from __future__ import annotations

import importlib
import inspect
import warnings
from collections.abc import Callable
from typing import Any

from torch import nn

from ..errors import ConfigError
from ..model_tools import swap_activations
from .lenet import LeNet4, LeNet5
from .sites import ActFactory, Site, SiteRecorder
from .wide_resnet import WideResNet, wrn22
from .xresnet import XResNet, xresnet18, xresnet34, xresnet50

__all__ = ["MODELS", "ActFactory", "LeNet4", "LeNet5", "Site", "WideResNet", "XResNet",
           "build_model", "load_factory", "swap_class", "wrn22", "xresnet18", "xresnet34",
           "xresnet50"]

MODELS = {"lenet4": LeNet4, "lenet5": LeNet5, "wrn22": wrn22, "xresnet18": xresnet18,
          "xresnet34": xresnet34, "xresnet50": xresnet50}


def load_factory(spec: str) -> Callable[..., nn.Module]:
    """The callable named by ``"package.module:factory"`` (the attribute may be dotted).

    Raises:
        ConfigError: the module cannot be imported or has no such callable.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"model {spec!r}: expected package.module:factory")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"model {spec!r}: cannot import {module_name} ({exc})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"model {spec!r}: {module_name} has no {attr}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"model {spec!r}: {attr} is not callable")
    return obj


def swap_class(name: str) -> type[nn.Module]:
    """The module class ``--swap`` names: a ``torch.nn`` class (``ReLU``, ``GELU``) or a
    dotted path (``package.module.Class``)."""
    cls = getattr(nn, name, None) if "." not in name else None
    if cls is None and "." in name:
        module_name, _, attr = name.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module_name), attr, None)
        except ImportError:
            cls = None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ConfigError(f"swap {name!r}: not a torch.nn module class (e.g. ReLU, GELU, "
                          "or package.module.Class)")
    return cls


def _custom(spec: str, act: ActFactory, swap: str, **kwargs: int) -> nn.Module:
    """A user's model from ``package.module:factory`` with its activation sites recorded.

    The factory is called with ``act`` (a zero-argument activation factory),
    ``in_channels``, ``num_classes`` and ``image_size``, or with those of them its
    signature names when it takes no ``**kwargs``. If the model holds no module that
    ``act`` built, every ``swap`` module in it is replaced by one ``act()`` each.
    """
    factory = load_factory(spec)
    made: list[nn.Module] = []
    recorder = SiteRecorder(act)

    def tracked() -> nn.Module:
        module = recorder()
        made.append(module)
        return module

    offered: dict[str, Any] = {"act": tracked, **kwargs}
    try:
        params = inspect.signature(factory).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            offered = {k: v for k, v in offered.items() if k in params}
    except (TypeError, ValueError):  # a builtin without a signature: offer everything
        pass
    model = factory(**offered)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model {spec!r} returned {type(model).__name__}, not a torch "
                          "nn.Module")
    mine = {id(m) for m in made}
    if not any(id(m) in mine for m in model.modules()):
        with warnings.catch_warnings():  # none found is the error below, in our words
            warnings.simplefilter("ignore")
            replaced = swap_activations(model, tracked, match=swap_class(swap))
        if not replaced:
            raise ConfigError(f"model {spec!r} neither uses act() nor holds a {swap} module "
                              "to swap: pass --swap with the class its activations have")
    paths = {id(m): p for p, m in model.named_modules()}
    used = [m for m in made if id(m) in paths]
    model.sites = [Site(i, paths[id(m)], None, None) for i, m in enumerate(used)]
    return model


def build_model(name: str, act: ActFactory, *, in_channels: int, num_classes: int,
                image_size: int, swap: str = "ReLU") -> nn.Module:
    """Build a model of :data:`MODELS`, or a user's from ``package.module:factory``
    (:func:`_custom`), with one ``act()`` per activation site."""
    if ":" in name:
        return _custom(name, act, swap, in_channels=in_channels, num_classes=num_classes,
                       image_size=image_size)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)} or "
                         "package.module:factory")
    return MODELS[name](act, in_channels=in_channels, num_classes=num_classes,
                        image_size=image_size)
