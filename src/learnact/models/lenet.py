"""LeNet5 and LeNet4, without batch norm, as in the paper's MNIST study."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .sites import ActFactory, Site, SiteRecorder

__all__ = ["LeNet4", "LeNet5"]


def _flat_size(features: nn.Module, in_channels: int, image_size: int) -> int:
    with torch.no_grad():
        return features(torch.zeros(1, in_channels, image_size, image_size)).numel()


class LeNet5(nn.Module):
    """LeNet5: 2 conv + 3 linear layers, no batch norm.

    conv 6@5x5 (pad 2) -> act -> max-pool -> conv 16@5x5 -> act -> max-pool
    -> 120 -> act -> 84 -> act -> classes. Four activation sites.

    Args:
        act: zero-argument factory returning a new activation module.
        in_channels: image channels. Default: 1.
        num_classes: Default: 10.
        image_size: square image side. Default: 28.
    """

    def __init__(self, act: ActFactory, in_channels: int = 1, num_classes: int = 10,
                 image_size: int = 28) -> None:
        super().__init__()
        rec = SiteRecorder(act)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2), rec(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), rec(), nn.MaxPool2d(2),
        )
        flat = _flat_size(self.features, in_channels, image_size)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, 120), rec(), nn.Linear(120, 84), rec(),
            nn.Linear(84, num_classes),
        )
        self.sites: list[Site] = rec.sites(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class LeNet4(nn.Module):
    """LeNet4: 2 conv + 2 linear layers, no batch norm.

    conv 4@5x5 (pad 2) -> act -> max-pool -> conv 16@5x5 -> act -> max-pool
    -> 120 -> act -> classes. Three activation sites.
    """

    def __init__(self, act: ActFactory, in_channels: int = 1, num_classes: int = 10,
                 image_size: int = 28) -> None:
        super().__init__()
        rec = SiteRecorder(act)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 4, 5, padding=2), rec(), nn.MaxPool2d(2),
            nn.Conv2d(4, 16, 5), rec(), nn.MaxPool2d(2),
        )
        flat = _flat_size(self.features, in_channels, image_size)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, 120), rec(), nn.Linear(120, num_classes),
        )
        self.sites: list[Site] = rec.sites(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
