"""Small networks shared by the TensorRT artifact tests (plan files, engine cache, builder options)."""
from __future__ import annotations

import netdsl.functional as F
from netdsl.dsl import Network


def small(name: str = "small", seed: int = 0, channels: int = 4) -> Network:
    """conv (padding 1) + relu on a dynamic batch: a plan of a few hundred kB, built in well under a second."""
    net = Network(name)
    x = net.input("data", ("N", 3, 6, 6))
    w = net.parameter("conv1.weight", (channels, 3, 3, 3))
    net.output(F.relu(F.conv(x, w, padding=1, name="conv1")), "y")
    net.init_random(seed=seed)
    return net
