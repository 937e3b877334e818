"""TensorRT network structure: netdsl's lowering vs TensorRT's own ONNX parser, same model, same weights.

    python benchmarks/tensorrt_structure.py                    # lenet, resnet50, bert (BERT-base, seq 128)
    python benchmarks/tensorrt_structure.py --models lenet --rounds 5 --batch N

For each model (the examples' ``network()``; random seeded weights where none are bound):
  netdsl        netdsl graph lowered by netdsl.backends.tensorrt.lower
  onnx(netdsl)  the same graph exported by netdsl.export_onnx, parsed by TensorRT-RTX's OnnxParser
  onnx(torch)   an equivalent torch module with the same weights, exported by torch.onnx (opset 17),
                parsed by the same parser (LeNet and ResNet-50; torch folds batch norm at export)
Reported: layers in the INetworkDefinition (and per type with --types), time to make the network
(lower / parse) and CPU build time (build_serialized_network), median of --rounds, interleaved, and
the ratios netdsl / peer. Both networks are evaluated with the inspect evaluator on the same input and
must agree (--no-verify to skip). Build = TensorRT-RTX builder on this machine (no GPU), float32.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
import warnings
from typing import Any, Callable, Optional

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "examples"))

import netdsl  # noqa: E402
from netdsl.backends.tensorrt import _trt, inspect  # noqa: E402
from netdsl.backends.tensorrt.builder import build_lowered  # noqa: E402
from netdsl.backends.tensorrt.profiles import make_profiles  # noqa: E402
from netdsl.backends.tensorrt.lower import lower  # noqa: E402


# ---- models ------------------------------------------------------------------------------------
def load_network(name: str, batch: Any) -> Any:
    import importlib
    mod = importlib.import_module(name)
    net = mod.network(batch=batch, weights=None)
    net.init_random(seed=0)
    return net


def torch_model(name: str, graph: Any) -> Optional[Any]:
    """An equivalent torch module with the graph's weights (names match the examples'), or None."""
    try:
        import torch
    except ImportError:
        return None
    nn, F = torch.nn, torch.nn.functional
    if name == "lenet":
        class LeNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1, self.conv2 = nn.Conv2d(1, 20, 5), nn.Conv2d(20, 50, 5)
                self.ip1, self.ip2 = nn.Linear(800, 500), nn.Linear(500, 10)

            def forward(self, x):
                x = F.max_pool2d(self.conv2(F.max_pool2d(self.conv1(x), 2)), 2)
                return torch.softmax(self.ip2(F.relu(self.ip1(torch.flatten(x, 1)))), 1)
        m = LeNet()
    elif name == "resnet50":
        class Bottleneck(nn.Module):
            def __init__(self, inp, planes, stride, down):
                super().__init__()
                self.conv1, self.bn1 = nn.Conv2d(inp, planes, 1, bias=False), nn.BatchNorm2d(planes)
                self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
                self.bn2 = nn.BatchNorm2d(planes)
                self.conv3, self.bn3 = nn.Conv2d(planes, planes * 4, 1, bias=False), nn.BatchNorm2d(planes * 4)
                self.downsample = nn.Sequential(nn.Conv2d(inp, planes * 4, 1, stride, bias=False),
                                                nn.BatchNorm2d(planes * 4)) if down else None

            def forward(self, x):
                out = F.relu(self.bn1(self.conv1(x)))
                out = F.relu(self.bn2(self.conv2(out)))
                out = self.bn3(self.conv3(out))
                return F.relu(out + (self.downsample(x) if self.downsample is not None else x))

        class ResNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1, self.bn1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)
                inp, layers = 64, []
                for planes, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
                    seq = [Bottleneck(inp, planes, stride, True)]
                    inp = planes * 4
                    seq += [Bottleneck(inp, planes, 1, False) for _ in range(blocks - 1)]
                    layers.append(nn.Sequential(*seq))
                self.layer1, self.layer2, self.layer3, self.layer4 = layers
                self.fc = nn.Linear(2048, 1000)

            def forward(self, x):
                x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
                x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
                return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
        m = ResNet()
    else:
        return None
    sd = {k: torch.from_numpy(np.asarray(p.value(), np.float32)) for k, p in graph.params.items()}
    missing, unexpected = m.load_state_dict(sd, strict=False)
    if [k for k in missing if not k.endswith("num_batches_tracked")] or unexpected:
        raise RuntimeError(f"torch {name}: weights do not bind: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return m.eval()


def torch_onnx(model: Any, graph: Any, feeds: dict, dynamic: bool) -> bytes:
    import torch
    names = [v.name for v in graph.inputs]
    f = io.BytesIO()
    dyn = {n: {0: "N"} for n in names} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, tuple(torch.from_numpy(feeds[n]) for n in names), f, opset_version=17,
                          input_names=names, output_names=[v.name for v in graph.outputs], dynamo=False,
                          dynamic_axes=dyn)
    return f.getvalue()


# ---- measuring ---------------------------------------------------------------------------------
class Variant:
    def __init__(self, label: str, make: Callable[[], tuple]):
        self.label = label
        self.make = make  # () -> (builder, network, keepalive, profiles)
        self.layers = 0
        self.types: dict = {}
        self.make_s: list = []
        self.build_s: list = []
        self.plan_bytes = 0


def netdsl_variant(trt: Any, graph: Any, profs: list) -> Variant:
    def make():
        lw = lower(graph, trt)
        return lw.builder, lw.network, lw, profs
    return Variant("netdsl", make)


def onnx_variant(trt: Any, label: str, data: bytes, profs: list) -> Variant:
    def make():
        lg = _trt.logger(trt)
        builder = trt.Builder(lg)
        net = builder.create_network(0)
        parser = trt.OnnxParser(net, lg)
        if not parser.parse(data):
            raise RuntimeError(f"{label}: parser: " + "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors)))
        return builder, net, parser, profs
    return Variant(label, make)


class _Built:
    """Adapter so build_lowered() configures any (builder, network) pair the same way."""

    def __init__(self, trt: Any, builder: Any, network: Any):
        self.trt, self.builder, self.network = trt, builder, network


def measure(trt: Any, v: Variant) -> Any:
    t0 = time.perf_counter()
    builder, net, keep, profs = v.make()
    t1 = time.perf_counter()
    plan = build_lowered(_Built(trt, builder, net), profs, progress=False)  # type: ignore[arg-type]
    t2 = time.perf_counter()
    v.make_s.append(t1 - t0)
    v.build_s.append(t2 - t1)
    v.layers = net.num_layers
    v.types = inspect.layer_counts(net, trt)
    v.plan_bytes = len(plan)
    return builder, net, keep


def verify(trt: Any, variants: list, feeds: dict, graph: Any) -> str:
    """Evaluate each network read back from TensorRT; they must agree with each other."""
    outs = []
    for v in variants:
        _, net, keep = v.make()[:3]
        got = inspect.evaluate(net, feeds, trt)
        outs.append({o.name: got[o.name] for o in graph.outputs})
    worst = 0.0
    for o in graph.outputs:
        base = outs[0][o.name]
        for other in outs[1:]:
            d = float(np.abs(other[o.name] - base).max()) / max(1.0, float(np.abs(base).max()))
            worst = max(worst, d)
    if worst > 1e-4:
        raise AssertionError(f"networks disagree: max rel diff {worst:.3g}")
    return f"outputs agree (max rel diff {worst:.2g})"


def main(argv: Optional[list] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="lenet,resnet50,bert")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", default="1", help="an int (static) or N (dynamic batch, profile 1/1/8)")
    ap.add_argument("--types", action="store_true", help="print layer counts per type")
    ap.add_argument("--no-verify", action="store_true")
    args = ap.parse_args(argv)
    trt = _trt.load()
    dynamic = not args.batch.isdigit()
    batch = args.batch if dynamic else int(args.batch)
    print(f"TensorRT structure, {_trt.version_string(trt)}, CPU build, float32, batch {batch}, "
          f"median of {args.rounds} rounds\n")
    rows = []
    for name in args.models.split(","):
        net = load_network(name, batch)
        g = net.graph
        profs = make_profiles(g, None, {"N": (1, 1, 8)} if dynamic else None)
        rng = np.random.default_rng(0)
        feeds = {}
        for v in g.inputs:
            shape = tuple(1 if not isinstance(d, int) else d for d in v.shape)
            feeds[v.name] = (rng.standard_normal(shape).astype(np.float32) if v.dtype.is_float else
                             rng.integers(0, 2 if "mask" in v.name else 1000, shape).astype(v.dtype.numpy))
            if "mask" in v.name:
                feeds[v.name][..., 0] = 1
        with tempfile.TemporaryDirectory() as td:
            path = os.path.join(td, f"{name}.onnx")
            netdsl.export_onnx(net, path)
            with open(path, "rb") as f:
                onnx_netdsl = f.read()
        variants = [netdsl_variant(trt, g, profs), onnx_variant(trt, "onnx(netdsl)", onnx_netdsl, profs)]
        tm = torch_model(name, g)
        if tm is not None:
            variants.append(onnx_variant(trt, "onnx(torch)", torch_onnx(tm, g, feeds, dynamic), profs))
        for v in variants:  # warm-up (first builds in a process pay one-time costs), not recorded
            measure(trt, v)
            v.make_s.clear()
            v.build_s.clear()
        for r in range(args.rounds):  # interleaved, the starting variant rotating every round
            for v in variants[r % len(variants):] + variants[:r % len(variants)]:
                measure(trt, v)
        check = "" if args.no_verify else verify(trt, variants, feeds, g)
        print(f"{name}: {check}")
        for v in variants:
            mk, bd = statistics.median(v.make_s), statistics.median(v.build_s)
            print(f"  {v.label:13s} {v.layers:5d} layers   make {mk * 1000:8.1f} ms   build {bd:7.2f} s   "
                  f"plan {v.plan_bytes / 1e6:7.1f} MB")
            if args.types:
                print("                " + ", ".join(f"{k.lower()} {n}" for k, n in sorted(v.types.items())))
        base = variants[0]
        for v in variants[1:]:
            lr = base.layers / v.layers
            br = statistics.median(base.build_s) / statistics.median(v.build_s)
            print(f"  netdsl / {v.label}: layers {lr:.2f}x, build time {br:.2f}x (< 1 = netdsl smaller/faster)")
            rows.append((name, v.label, base.layers, v.layers, statistics.median(base.build_s),
                         statistics.median(v.build_s)))
        print()
    print("| model | peer | layers netdsl | layers peer | build s netdsl | build s peer |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.2f} | {r[5]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
