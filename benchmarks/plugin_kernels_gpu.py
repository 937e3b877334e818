"""The shipped plugins' CUDA kernels (launched as TensorRT's enqueue does: netdsl.plugins.cuda.launch on
a stream netdsl did not create) against peers measured in the same run: the NumPy reference on the
host CPU, the same computation written with torch ops on the GPU, and for nms ONNX Runtime's
NonMaxSuppression (CPU). Device times by CUDA events (median of ``--iters``), host times by wall clock.
Each kernel's output is checked against the peer before timing.

    python benchmarks/plugin_kernels_gpu.py [--iters 50]

Needs an NVIDIA GPU, torch with CUDA and cuda-python.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from netdsl.plugins.cuda import launch  # noqa: E402
from tests.plugins.helpers import load_plugin  # noqa: E402


def gpu_ms(fn, iters: int, stream) -> float:
    import torch
    fn()
    stream.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record(stream)
        fn()
        end.record(stream)
        end.synchronize()
        times.append(start.elapsed_time(end))
    return float(np.median(times))


def host_ms(fn, iters: int) -> float:
    fn()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times))


def kernel_fn(kernel, dtype, stream, inputs, outputs, attrs):
    return lambda: launch(kernel, dtype, stream.cuda_stream, [t.data_ptr() for t in inputs],
                          [t.data_ptr() for t in outputs], [tuple(t.shape) for t in inputs], attrs)


def row(name: str, kernel_ms: float, peers: dict) -> str:
    cells = " | ".join(f"{k} {v:.3f} ms ({v / kernel_ms:.1f}x)" for k, v in peers.items())
    return f"| {name} | {kernel_ms:.3f} | {cells} |"


class _Printer:
    """Table rows printed as they are measured."""

    def append(self, line: str) -> None:
        print(line, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=50)
    args = ap.parse_args()
    import torch
    dev = torch.device("cuda")
    stream = torch.cuda.Stream()
    rng = np.random.default_rng(0)
    print(f"GPU: {torch.cuda.get_device_name()}; torch {torch.__version__}; median of {args.iters} (GPU), 2-5 (host)")
    print("| kernel (shape) | netdsl kernel ms | peers: ms (peer / kernel) |")
    print("|---|---|---|", flush=True)
    lines = _Printer()
    with torch.cuda.stream(stream):
        # reorg: YOLOv2's reorg input (batch 8, 64 x 26 x 26 at 416) and a YOLOv5 Focus input (batch 8, 3 x 640 x 640)
        P = load_plugin("reorg")
        for mode, shape in (("darknet", (8, 64, 26, 26)), ("focus", (8, 3, 640, 640))):
            x = rng.standard_normal(shape).astype(np.float32)
            ref = P.reference(x, block=2, mode=mode)
            xt = torch.from_numpy(x).to(dev)
            yt = torch.empty(ref.shape, device=dev)
            attrs = {"block": 2, "mode": mode}
            fn = kernel_fn(P.KERNEL, "float32", stream, [xt], [yt], attrs)
            fn()
            stream.synchronize()
            assert np.array_equal(yt.cpu().numpy(), ref)
            n, c, h, w = shape
            if mode == "focus":
                def torch_fn():
                    return torch.cat([xt[..., ::2, ::2], xt[..., 1::2, ::2], xt[..., ::2, 1::2], xt[..., 1::2, 1::2]], 1)
            else:
                def torch_fn():
                    xp = xt.reshape(n, c // 4, h * 2, w * 2)
                    return xp.reshape(n, c // 4, h, 2, w, 2).permute(0, 3, 5, 1, 2, 4).reshape(n, c * 4, h // 2, w // 2)
            assert np.array_equal(torch_fn().cpu().numpy(), ref)
            lines.append(row(f"reorg {mode} f32 {shape}", gpu_ms(fn, args.iters, stream),
                             {"torch GPU": gpu_ms(torch_fn, args.iters, stream),
                              "NumPy CPU": host_ms(lambda: P.reference(x, block=2, mode=mode), 5)}))
        # yolo_decode: YOLOv3's stride-8 head at 416 (batch 8, 255 x 52 x 52)
        P = load_plugin("yolo_decode")
        anchors = (10.0, 13.0, 16.0, 30.0, 33.0, 23.0)
        attrs = dict(anchors=anchors, stride=8.0, num_classes=80, scale_x_y=1.0, box_format="xyxy")
        x = rng.normal(0, 1.5, (8, 255, 52, 52)).astype(np.float32)
        ref_b, ref_s = P.reference(x, **attrs)
        xt = torch.from_numpy(x).to(dev)
        bt, st = torch.empty(ref_b.shape, device=dev), torch.empty(ref_s.shape, device=dev)
        fn = kernel_fn(P.KERNEL, "float32", stream, [xt], [bt, st], attrs)
        fn()
        stream.synchronize()
        np.testing.assert_allclose(bt.cpu().numpy(), ref_b, rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(st.cpu().numpy(), ref_s, rtol=1e-5, atol=1e-6)
        anc = torch.tensor(anchors, device=dev).reshape(1, 3, 2, 1, 1)
        gy, gx = torch.meshgrid(torch.arange(52, device=dev), torch.arange(52, device=dev), indexing="ij")

        def torch_decode():
            p = xt.reshape(8, 3, 85, 52, 52)
            cx = (gx + torch.sigmoid(p[:, :, 0])) * 8.0
            cy = (gy + torch.sigmoid(p[:, :, 1])) * 8.0
            wh = torch.exp(p[:, :, 2:4]) * anc
            boxes = torch.stack([cx - wh[:, :, 0] / 2, cy - wh[:, :, 1] / 2, cx + wh[:, :, 0] / 2, cy + wh[:, :, 1] / 2], -1)
            scores = (torch.sigmoid(p[:, :, 4:5]) * torch.sigmoid(p[:, :, 5:])).permute(0, 1, 3, 4, 2)
            return boxes.reshape(8, -1, 4), scores.reshape(8, -1, 80)
        np.testing.assert_allclose(torch_decode()[0].cpu().numpy(), ref_b, rtol=1e-5, atol=1e-3)
        lines.append(row("yolo_decode f32 (8, 255, 52, 52)", gpu_ms(fn, args.iters, stream),
                         {"torch GPU": gpu_ms(torch_decode, args.iters, stream),
                          "NumPy CPU": host_ms(lambda: P.reference(x, **attrs), 5)}))
        # nms: YOLOv3 at 416 (10647 boxes, 80 classes), batch 8, detection-like scores
        P = load_plugin("nms")
        n, b, c = 8, 10647, 80
        xy = rng.uniform(0, 416, (n, b, 2))
        wh = rng.uniform(8, 120, (n, b, 2))
        boxes = np.concatenate([xy - wh / 2, xy + wh / 2], -1).astype(np.float32)
        scores = (1 / (1 + np.exp(-rng.normal(-4, 1.5, (n, b, c))))).astype(np.float32)
        attrs = dict(iou_threshold=0.45, score_threshold=0.25, max_detections=100, box_format="xyxy")
        ref_d, ref_c = P.reference(boxes, scores, **attrs)
        bt_, sc_ = torch.from_numpy(boxes).to(dev), torch.from_numpy(scores).to(dev)
        dt, ct = torch.empty(ref_d.shape, device=dev), torch.empty(ref_c.shape, device=dev, dtype=torch.int32)
        fn = kernel_fn(P.KERNEL, "float32", stream, [bt_, sc_], [dt, ct], attrs)
        fn()
        stream.synchronize()
        same = np.array_equal(ct.cpu().numpy(), ref_c) and np.array_equal(dt.cpu().numpy(), ref_d)
        print(f"nms kernel output identical to the reference: {same}")   # float32 vs float64 IoU may differ at the threshold
        peers = {"NumPy CPU": host_ms(lambda: P.reference(boxes, scores, **attrs), 2)}
        try:
            import onnxruntime as ort
            from onnx import TensorProto, helper
            consts = [helper.make_tensor("m", TensorProto.INT64, [1], [100]),
                      helper.make_tensor("i", TensorProto.FLOAT, [1], [0.45]),
                      helper.make_tensor("t", TensorProto.FLOAT, [1], [0.25])]
            g = helper.make_graph([helper.make_node("NonMaxSuppression", ["b", "s", "m", "i", "t"], ["y"])], "nms",
                                  [helper.make_tensor_value_info("b", TensorProto.FLOAT, None),
                                   helper.make_tensor_value_info("s", TensorProto.FLOAT, None)],
                                  [helper.make_tensor_value_info("y", TensorProto.INT64, None)], consts)
            sess = ort.InferenceSession(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=7).SerializeToString(),
                                        providers=["CPUExecutionProvider"])
            st_ = scores.transpose(0, 2, 1).copy()
            peers["ONNX Runtime NonMaxSuppression CPU (no top-k merge)"] = host_ms(lambda: sess.run(None, {"b": boxes, "s": st_}), 5)
        except ImportError:
            pass
        lines.append(row(f"nms f32 ({n}, {b}, {c}), {int(ref_c.mean())} kept/image", gpu_ms(fn, args.iters, stream), peers))


if __name__ == "__main__":
    main()
