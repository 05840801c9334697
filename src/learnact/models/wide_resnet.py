"""fastai's DAWNBench WideResNet (wrn_22): pre-activation blocks with batch norm.

Structure after fastai v1's ``models/wrn.py`` (the paper's CIFAR-10 set-up):
a 3x3 stem to 16 channels, 3 groups of N pre-activation basic blocks with
widths 16k, 32k, 64k (strides 1, 2, 2), then BN -> act -> global pool -> linear.
Each block has two activation sites (A-1 after the first BN, A-2 after the
second), so wrn22 has 9 blocks B0..B8 and 19 sites including the final one.
"""

from __future__ import annotations

from torch import Tensor, nn

from .sites import ActFactory, Site, SiteRecorder

__all__ = ["BasicBlock", "WideResNet", "wrn22"]


class BasicBlock(nn.Module):
    """Pre-activation block: BN-act-conv, BN-act-conv (scaled by 0.2), plus shortcut."""

    def __init__(self, ni: int, nf: int, stride: int, rec: SiteRecorder, block: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(ni)
        self.act1 = rec(block, 1)
        self.conv1 = nn.Conv2d(ni, nf, 3, stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(nf)
        self.act2 = rec(block, 2)
        self.conv2 = nn.Conv2d(nf, nf, 3, 1, padding=1, bias=False)
        self.shortcut = (nn.Conv2d(ni, nf, 1, stride, bias=False)
                         if ni != nf or stride != 1 else nn.Identity())

    def forward(self, x: Tensor) -> Tensor:
        x2 = self.act1(self.bn1(x))
        r = self.shortcut(x2)
        out = self.conv1(x2)
        out = self.conv2(self.act2(self.bn2(out))) * 0.2
        return out + r


class WideResNet(nn.Module):
    """WideResNet(num_groups, N, k) with an activation factory.

    Args:
        act: zero-argument factory returning a new activation module.
        num_groups: Default: 3.
        n: blocks per group. Default: 3.
        k: widening factor. Default: 6.
        start: stem width. Default: 16.
        in_channels: Default: 3.
        num_classes: Default: 10.
    """

    def __init__(self, act: ActFactory, num_groups: int = 3, n: int = 3, k: int = 6,
                 start: int = 16, in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        rec = SiteRecorder(act)
        widths = [start] + [start * k * 2**i for i in range(num_groups)]
        self.stem = nn.Conv2d(in_channels, start, 3, padding=1, bias=False)
        groups, block = [], 0
        for g in range(num_groups):
            blocks = []
            for i in range(n):
                ni = widths[g] if i == 0 else widths[g + 1]
                stride = (1 if g == 0 else 2) if i == 0 else 1
                blocks.append(BasicBlock(ni, widths[g + 1], stride, rec, block))
                block += 1
            groups.append(nn.Sequential(*blocks))
        self.groups = nn.Sequential(*groups)
        self.bn = nn.BatchNorm2d(widths[-1])
        self.act = rec()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)
        self.sites: list[Site] = rec.sites(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.groups(self.stem(x))
        x = self.pool(self.act(self.bn(x))).flatten(1)
        return self.fc(x)


def wrn22(act: ActFactory, in_channels: int = 3, num_classes: int = 10,
          image_size: int = 32) -> WideResNet:
    """fastai's ``wrn_22``: WideResNet(num_groups=3, N=3, k=6), about 9.7M parameters."""
    del image_size  # global pooling makes the network size-agnostic
    return WideResNet(act, 3, 3, 6, 16, in_channels, num_classes)
