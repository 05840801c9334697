"""Model factories as a user would write them, for ``--model user_models:NAME``."""

from __future__ import annotations

from torch import nn


def small(act, in_channels, num_classes, **kwargs):
    """Uses ``act`` for its two activations."""
    return nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), act(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.LazyLinear(32), act(), nn.Linear(32, num_classes))


def relu_net(in_channels, num_classes):
    """Ignores ``act`` (its signature does not even take it): its ReLUs are swapped."""
    return nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.LazyLinear(16), nn.ReLU(), nn.Linear(16, num_classes))


def gelu_net(in_channels, num_classes, image_size):
    """GELU activations, swapped with ``--swap GELU``."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size * image_size, 16),
                         nn.GELU(), nn.Linear(16, num_classes))


def not_a_model(**kwargs):
    """Returns something that is not a module."""
    return 42
