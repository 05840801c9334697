"""LeNet5 and LeNet4, without batch norm, as in the paper's MNIST study."""

from __future__ import annotations

from torch import Tensor, nn

from .sites import ActFactory, Site, SiteRecorder

__all__ = ["LeNet4", "LeNet5"]


def _flat_size(image_size: int) -> int:
    """Features after conv(pad 2), pool, conv(5x5), pool: computed, not probed with a forward.

    A probe would run the activations, and a stochastic one (ProbAct) would
    draw from the random stream that initialises the layers after it.
    """
    side = (image_size // 2 - 4) // 2
    if side < 1:
        raise ValueError(f"LeNet needs images of at least 12x12 pixels, got {image_size}")
    return 16 * side * side


class _LeNet(nn.Module):
    """Two conv layers (5x5, max-pooled) and a stack of linear layers, no batch norm."""

    def __init__(self, act: ActFactory, conv1_maps: int, hidden: tuple[int, ...],
                 in_channels: int, num_classes: int, image_size: int) -> None:
        super().__init__()
        rec = SiteRecorder(act)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, conv1_maps, 5, padding=2), rec(), nn.MaxPool2d(2),
            nn.Conv2d(conv1_maps, 16, 5), rec(), nn.MaxPool2d(2),
        )
        layers: list[nn.Module] = [nn.Flatten()]
        width = _flat_size(image_size)
        for h in hidden:
            layers += [nn.Linear(width, h), rec()]
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*layers)
        self.sites: list[Site] = rec.sites(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class LeNet5(_LeNet):
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
        super().__init__(act, 6, (120, 84), in_channels, num_classes, image_size)


class LeNet4(_LeNet):
    """LeNet4: 2 conv + 2 linear layers, no batch norm.

    conv 4@5x5 (pad 2) -> act -> max-pool -> conv 16@5x5 -> act -> max-pool
    -> 120 -> act -> classes. Three activation sites.
    """

    def __init__(self, act: ActFactory, in_channels: int = 1, num_classes: int = 10,
                 image_size: int = 28) -> None:
        super().__init__(act, 4, (120,), in_channels, num_classes, image_size)
