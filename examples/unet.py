"""A small UNet (Ronneberger et al.) for segmentation, in the layout of milesial/Pytorch-UNet.

Encoder: DoubleConv (conv3x3-BN-ReLU x2) then max-pool; decoder: 2x up-sampling (a transposed
convolution, or bilinear interpolation in the last stage), concatenation with the skip connection,
DoubleConv; a GroupNorm'd bottleneck; a 1x1 output convolution to ``classes`` logits.
Parameter names: inc.double_conv.0.weight, down1.maxpool_conv.1.double_conv..., up1.up.weight, outc.conv...

    netdsl summary examples/unet.py
    netdsl check examples/unet.py --random-weights --backends reference,openvino
"""
from __future__ import annotations

import netdsl as nd
from netdsl import nn


class DoubleConv(nn.Module):
    def __init__(self, cin: int, cout: int, groups: int = 0) -> None:
        super().__init__()
        norm = (lambda c: nn.GroupNorm(groups, c)) if groups else nn.BatchNorm2d
        self.double_conv = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), norm(cout), nn.ReLU(),
                                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), norm(cout), nn.ReLU())

    def forward(self, x: nd.Tensor) -> nd.Tensor:
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, cin: int, cout: int, groups: int = 0) -> None:
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(cin, cout, groups))

    def forward(self, x: nd.Tensor) -> nd.Tensor:
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, cin: int, cout: int, bilinear: bool = False) -> None:
        super().__init__()
        self.bilinear = bilinear
        if bilinear:   # interpolate, then the DoubleConv sees cin + skip channels
            self.conv = DoubleConv(cin + cout, cout)
        else:
            self.up = nn.ConvTranspose2d(cin, cin // 2, 2, stride=2)
            self.conv = DoubleConv(cin // 2 + cout, cout)

    def forward(self, x: nd.Tensor, skip: nd.Tensor) -> nd.Tensor:
        if self.bilinear:
            x = nd.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        else:
            x = self.up(x)
        return self.conv(nd.concat([skip, x], axis=1))


class UNet(nn.Module):
    def __init__(self, in_channels: int = 3, classes: int = 2, base: int = 16) -> None:
        super().__init__()
        b = base
        self.inc = DoubleConv(in_channels, b)
        self.down1 = Down(b, 2 * b)
        self.down2 = Down(2 * b, 4 * b)
        self.down3 = Down(4 * b, 8 * b, groups=4)      # bottleneck with GroupNorm
        self.up1 = Up(8 * b, 4 * b)
        self.up2 = Up(4 * b, 2 * b)
        self.up3 = Up(2 * b, b, bilinear=True)
        self.outc = nn.Module()
        self.outc.conv = nn.Conv2d(b, classes, 1)

    def forward(self, x: nd.Tensor) -> nd.Tensor:
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        y = self.up1(x4, x3)
        y = self.up2(y, x2)
        y = self.up3(y, x1)
        return self.outc.conv(y)


def network(batch: int | str = "N", size: int = 64, classes: int = 2, base: int = 16,
            weights: str | None = None) -> nd.Network:
    """UNet on (batch, 3, size, size) -> per-pixel logits ``logits`` (batch, classes, size, size)."""
    if size % 8:
        raise ValueError(f"unet: size {size} must be a multiple of 8 (three 2x down-samplings)")
    net = nd.Network("unet")
    x = net.input("image", (batch, 3, size, size))
    net.output(UNet(3, classes, base)(x), "logits")
    if weights:
        net.load_weights(weights)
    return net


def small() -> nd.Network:
    return network(size=32, base=8)
