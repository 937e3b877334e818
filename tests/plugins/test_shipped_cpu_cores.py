"""The C++ compute cores of the shipped plugins (plugins/<name>/cpu.cpp, what the OpenVINO extension
runs), compiled with the system C++ compiler and called through ctypes, against each NumPy reference."""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess

import numpy as np
import pytest

from tests.plugins.gpu import load_plugin

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CXX = shutil.which("g++") or shutil.which("c++")
pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler (g++)")

IDENTITY = "[](float v) { return v; }"
HARNESS = {
    "reorg": """
extern "C" void run_f32(const float* x, float* y, long long n, long long c, long long h, long long w,
                        long long b, int mode) { netdsl_plugins::reorg::run(x, y, n, c, h, w, b, mode); }""",
    "yolo_decode": f"""
extern "C" void run_f32(const float* x, float* boxes, float* scores, long long n, long long a, long long h,
                        long long w, long long c, const float* anchors, float stride, float s, int cxcywh) {{
    netdsl_plugins::yolo_decode::run(x, boxes, scores, n, a, h, w, c, anchors, stride, s, cxcywh != 0,
                                     {IDENTITY}, {IDENTITY}); }}""",
    "nms": f"""
extern "C" void run_f32(const float* boxes, const float* scores, float* dets, int* count, long long n,
                        long long b, long long c, long long max_det, float iou, float score, int cxcywh) {{
    netdsl_plugins::nms::run(boxes, scores, dets, count, n, b, c, max_det, iou, score, cxcywh != 0,
                             {IDENTITY}, {IDENTITY}); }}""",
}


def _build(name: str, tmp_path) -> ctypes.CDLL:
    src = tmp_path / f"{name}_harness.cpp"
    src.write_text(f'#include "{os.path.join(ROOT, "plugins", name, "cpu.cpp")}"\n{HARNESS[name]}\n')
    lib = tmp_path / f"lib{name}.so"
    r = subprocess.run([CXX, "-O1", "-std=c++17", "-shared", "-fPIC", "-o", str(lib), str(src)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return ctypes.CDLL(str(lib))


def _p(a: np.ndarray):
    return a.ctypes.data_as(ctypes.c_void_p)


LL, F, I = ctypes.c_longlong, ctypes.c_float, ctypes.c_int


@pytest.mark.parametrize("mode", ["space_to_depth", "focus", "darknet"])
def test_reorg_core(tmp_path, mode):
    P, lib = load_plugin("reorg"), _build("reorg", tmp_path)
    x = np.random.default_rng().standard_normal((2, 8, 6, 4)).astype(np.float32)
    y = np.empty((2, 32, 3, 2), np.float32)
    lib.run_f32(_p(x), _p(y), *map(LL, (2, 8, 6, 4, 2)), I(P.MODES.index(mode)))
    np.testing.assert_array_equal(y, P.reference(x, block=2, mode=mode))


@pytest.mark.parametrize("box_format", ["xyxy", "cxcywh"])
def test_yolo_decode_core(tmp_path, box_format):
    P, lib = load_plugin("yolo_decode"), _build("yolo_decode", tmp_path)
    anchors = np.array([10, 14, 23, 27, 37, 58], np.float32)
    x = np.random.default_rng().normal(0, 1.5, (2, 3 * 7, 5, 4)).astype(np.float32)
    boxes, scores = np.empty((2, 60, 4), np.float32), np.empty((2, 60, 2), np.float32)
    lib.run_f32(_p(x), _p(boxes), _p(scores), *map(LL, (2, 3, 5, 4, 2)), _p(anchors), F(16.0), F(1.05),
                I(box_format == "cxcywh"))
    ref = P.reference(x.astype(np.float64), anchors=tuple(anchors), stride=16.0, num_classes=2, scale_x_y=1.05,
                      box_format=box_format)
    np.testing.assert_allclose(boxes, ref[0], rtol=2e-6, atol=2e-6 * np.abs(ref[0]).max())
    np.testing.assert_allclose(scores, ref[1], rtol=2e-6, atol=1e-7)


def test_nms_core(tmp_path):
    P, lib = load_plugin("nms"), _build("nms", tmp_path)
    from plugins.nms.test_nms import random_problem
    boxes, scores = random_problem(np.random.default_rng(), 3, 400, 5, integer=True, ties=True, size=500.0)
    boxes, scores = boxes.astype(np.float32), scores.astype(np.float32)
    for max_det, iou, thr in [(50, 0.45, 0.25), (2000, 0.6, 0.0), (3, 0.3, 0.9)]:
        dets, count = np.empty((3, max_det, 6), np.float32), np.empty(3, np.int32)
        lib.run_f32(_p(boxes), _p(scores), _p(dets), _p(count), *map(LL, (3, 400, 5, max_det)), F(iou), F(thr), I(0))
        ref_dets, ref_count = P.reference(boxes.astype(np.float64), scores.astype(np.float64), iou_threshold=iou,
                                          score_threshold=thr, max_detections=max_det, box_format="xyxy")
        np.testing.assert_array_equal(count, ref_count)
        np.testing.assert_array_equal(dets, ref_dets)
