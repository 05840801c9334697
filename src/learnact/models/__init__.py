"""Models that take an activation factory and expose their activation sites."""

from __future__ import annotations

from torch import nn

from .lenet import LeNet4, LeNet5
from .sites import ActFactory, Site
from .wide_resnet import WideResNet, wrn22
from .xresnet import XResNet, xresnet18, xresnet34, xresnet50

__all__ = ["MODELS", "ActFactory", "LeNet4", "LeNet5", "Site", "WideResNet", "XResNet",
           "build_model", "wrn22", "xresnet18", "xresnet34", "xresnet50"]

MODELS = {"lenet4": LeNet4, "lenet5": LeNet5, "wrn22": wrn22, "xresnet18": xresnet18,
          "xresnet34": xresnet34, "xresnet50": xresnet50}


def build_model(name: str, act: ActFactory, *, in_channels: int, num_classes: int,
                image_size: int) -> nn.Module:
    """Build a model of :data:`MODELS` with one ``act()`` per activation site."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](act, in_channels=in_channels, num_classes=num_classes,
                        image_size=image_size)
