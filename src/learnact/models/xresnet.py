"""fastai's XResNet: ResNet with the "bag of tricks" changes (He et al. 2019).

Structure after fastai's ``vision/models/xresnet.py`` (the paper's §8.3
Imagenette/Imagewoof experiments put Dual Line into its XResNet-50):

* a stem of three 3x3 conv-BN-act layers (32, 32, 64 channels, the first with
  stride 2), then a 3x3 max-pool with stride 2;
* four stages of 64, 128, 256, 512 (x ``expansion``) channels, the first
  at stride 1 and the rest at stride 2; basic blocks (two 3x3 convs) for
  ``expansion = 1``, bottleneck blocks (1x1, 3x3, 1x1) for ``expansion = 4``;
* ResNet-D shortcuts: a 2x2 average pool (ceil mode) where the block strides,
  then a 1x1 conv + BN where the width changes;
* the last BatchNorm of each residual branch starts at zero, so every block
  starts as the identity; convs and the linear layer get Kaiming-normal
  (fan-in) weights and zero biases;
* global average pooling, then one linear layer.

Activation sites: three in the stem (no block), then per block one after each
conv but the last (positions 1, or 1 and 2 for bottlenecks) and one after the
residual sum (position 2, or 3 for bottlenecks). ``xresnet50`` has 16 blocks.
"""

from __future__ import annotations

from torch import Tensor, nn

from .sites import ActFactory, Site, SiteRecorder

__all__ = ["XResBlock", "XResNet", "xresnet18", "xresnet34", "xresnet50"]


def _conv_bn(ni: int, nf: int, ks: int = 3, stride: int = 1, zero_bn: bool = False
             ) -> list[nn.Module]:
    conv = nn.Conv2d(ni, nf, ks, stride, padding=ks // 2, bias=False)
    bn = nn.BatchNorm2d(nf)
    nn.init.constant_(bn.weight, 0.0 if zero_bn else 1.0)
    return [conv, bn]


class XResBlock(nn.Module):
    """A residual block: a conv path, a ResNet-D identity path, and an activation after the sum.

    Args:
        expansion: 1 (basic block) or 4 (bottleneck).
        ni, nf: input and output widths before expansion.
        stride: 1 or 2.
        rec: the site recorder that builds the activations.
        block: this block's index among all blocks.
    """

    def __init__(self, expansion: int, ni: int, nf: int, stride: int, rec: SiteRecorder,
                 block: int) -> None:
        super().__init__()
        nh, ni, nf = nf, ni * expansion, nf * expansion
        if expansion == 1:
            layers = [*_conv_bn(ni, nh, 3, stride), rec(block, 1),
                      *_conv_bn(nh, nf, 3, 1, zero_bn=True)]
        else:
            layers = [*_conv_bn(ni, nh, 1), rec(block, 1),
                      *_conv_bn(nh, nh, 3, stride), rec(block, 2),
                      *_conv_bn(nh, nf, 1, zero_bn=True)]
        self.convpath = nn.Sequential(*layers)
        idpath: list[nn.Module] = []
        if stride != 1:
            idpath.append(nn.AvgPool2d(2, ceil_mode=True))
        if ni != nf:
            idpath += _conv_bn(ni, nf, 1)
        self.idpath = nn.Sequential(*idpath)
        self.act = rec(block, 2 if expansion == 1 else 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.convpath(x) + self.idpath(x))


class XResNet(nn.Module):
    """XResNet with an activation factory.

    Args:
        act: zero-argument factory returning a new activation module.
        expansion: 1 for basic blocks, 4 for bottlenecks.
        layers: blocks per stage, e.g. ``(3, 4, 6, 3)``.
        in_channels: Default: 3.
        num_classes: Default: 1000.
        stem: the stem's widths. Default: ``(32, 32, 64)``.

    Attributes:
        sites: the activation sites, stem first, each with block and position.
    """

    def __init__(self, act: ActFactory, expansion: int, layers: tuple[int, ...],
                 in_channels: int = 3, num_classes: int = 1000,
                 stem: tuple[int, ...] = (32, 32, 64)) -> None:
        super().__init__()
        rec = SiteRecorder(act)
        widths = [in_channels, *stem]
        stem_layers: list[nn.Module] = []
        for i in range(len(stem)):
            stem_layers += [*_conv_bn(widths[i], widths[i + 1], 3, 2 if i == 0 else 1), rec()]
        self.stem = nn.Sequential(*stem_layers, nn.MaxPool2d(3, 2, padding=1))
        sizes = [64 // expansion, 64, 128, 256, 512]
        stages, block = [], 0
        for s, n in enumerate(layers):
            blocks = []
            for i in range(n):
                ni = sizes[s] if i == 0 else sizes[s + 1]
                stride = (1 if s == 0 else 2) if i == 0 else 1
                blocks.append(XResBlock(expansion, ni, sizes[s + 1], stride, rec, block))
                block += 1
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(sizes[len(layers)] * expansion, num_classes)
        inside_acts = rec.activation_modules()  # e.g. FReLU's conv keeps its own init
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and id(m) not in inside_acts:
                nn.init.kaiming_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        self.sites: list[Site] = rec.sites(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stages(self.stem(x))
        return self.fc(self.pool(x).flatten(1))


def xresnet18(act: ActFactory, in_channels: int = 3, num_classes: int = 1000,
              image_size: int = 224) -> XResNet:
    """XResNet-18: basic blocks, stages (2, 2, 2, 2), 8 blocks."""
    del image_size  # global pooling makes the network size-agnostic
    return XResNet(act, 1, (2, 2, 2, 2), in_channels, num_classes)


def xresnet34(act: ActFactory, in_channels: int = 3, num_classes: int = 1000,
              image_size: int = 224) -> XResNet:
    """XResNet-34: basic blocks, stages (3, 4, 6, 3), 16 blocks."""
    del image_size
    return XResNet(act, 1, (3, 4, 6, 3), in_channels, num_classes)


def xresnet50(act: ActFactory, in_channels: int = 3, num_classes: int = 1000,
              image_size: int = 224) -> XResNet:
    """XResNet-50: bottleneck blocks (expansion 4), stages (3, 4, 6, 3), 16 blocks."""
    del image_size
    return XResNet(act, 4, (3, 4, 6, 3), in_channels, num_classes)
