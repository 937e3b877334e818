"""MobileNetV2 (torchvision layout and parameter names: features.N..., classifier.1).

    netdsl summary examples/mobilenet_v2.py
    netdsl run examples/mobilenet_v2.py --random-weights --backend openvino
"""
from __future__ import annotations

import netdsl as nd
from netdsl import nn


def conv_bn_relu(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6())


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = int(round(cin * expand_ratio))
        self.use_res = stride == 1 and cin == cout
        layers = [] if expand_ratio == 1 else [conv_bn_relu(cin, hidden, k=1)]
        layers += [conv_bn_relu(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: nd.Tensor) -> nd.Tensor:
        y = self.conv(x)
        return x + y if self.use_res else y


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class MobileNetV2(nn.Module):
    SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1)]

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0) -> None:
        super().__init__()
        cin = _make_divisible(32 * width_mult)
        last = _make_divisible(1280 * max(1.0, width_mult))
        feats: list = [conv_bn_relu(3, cin, stride=2)]
        for t, c, n, s in self.SETTINGS:
            cout = _make_divisible(c * width_mult)
            for i in range(n):
                feats.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        feats.append(conv_bn_relu(cin, last, k=1))
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x: nd.Tensor) -> nd.Tensor:
        x = nd.global_avg_pool(self.features(x), name="pool")
        return self.classifier(nd.flatten(x, 1))


def network(batch: int | str = "N", weights: str | None = None) -> nd.Network:
    """MobileNetV2 on (batch, 3, 224, 224) -> logits (batch, 1000)."""
    net = nd.Network("mobilenet_v2")
    x = net.input("data", (batch, 3, 224, 224))
    net.output(MobileNetV2()(x), "logits")
    if weights:
        net.load_weights(weights)
    return net
