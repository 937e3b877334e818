"""The compiled OpenVINO route's build cache: what goes into its key, and rebuilds on header edits."""
from __future__ import annotations

import numpy as np
import pytest

import netdsl as nd
from netdsl.plugins import Cpu, declare, use_route
from netdsl.plugins.cpp_build import build_key, headers, toolchain_missing

CPU = """#include "netdsl_plugin.hpp"
#include "factor.h"
#include "detail/offset.hpp"

void netdsl_compute(const netdsl::Inputs& in, netdsl::Outputs& out, const netdsl::Attrs&) {
    const float* x = in[0].ptr<float>();
    float* y = out[0].ptr<float>();
    for (int64_t i = 0; i < in[0].numel(); ++i) y[i] = factor() * x[i] + offset();
}
"""


def _plugin(folder, factor=2.0, offset=0.5):
    (folder / "detail").mkdir(exist_ok=True)
    (folder / "cpu.cpp").write_text(CPU)
    (folder / "factor.h").write_text(f"#pragma once\ninline float factor() {{ return {factor}f; }}\n")
    (folder / "detail" / "offset.hpp").write_text(f"#pragma once\ninline float offset() {{ return {offset}f; }}\n")
    return declare("test_cpp_header", infer=lambda x: x, reference=lambda x: x, cpu=Cpu(source=folder / "cpu.cpp"),
                   replace=True)


def test_the_key_covers_the_headers_the_source_includes(tmp_path):
    pytest.importorskip("openvino", reason="openvino not installed")
    op = _plugin(tmp_path)
    names = {h.name for h in headers(op.plugin.cpu.source)}
    assert {"factor.h", "offset.hpp", "netdsl_plugin.hpp", "netdsl_plugin_ov.hpp"} <= names
    k0 = build_key(op.plugin)
    (tmp_path / "factor.h").write_text("#pragma once\ninline float factor() { return 3.0f; }\n")
    k1 = build_key(op.plugin)
    (tmp_path / "detail" / "offset.hpp").write_text("#pragma once\ninline float offset() { return 1.5f; }\n")
    k2 = build_key(op.plugin)
    (tmp_path / "notes.txt").write_text("not a header")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.h").write_text("// not included")
    assert len({k0, k1, k2}) == 3 and build_key(op.plugin) == k2


@pytest.mark.skipif(bool(toolchain_missing()), reason=f"no {toolchain_missing()} to build extensions")
def test_editing_an_included_header_rebuilds_the_extension(tmp_path, monkeypatch):
    pytest.importorskip("openvino", reason="openvino not installed")
    monkeypatch.setenv("NETDSL_PLUGIN_CACHE", str(tmp_path / "cache"))
    x = np.random.default_rng(3).standard_normal((2, 5)).astype(np.float32)
    for offset in (0.5, -1.25):  # the second build differs from the first in detail/offset.hpp only
        op = _plugin(tmp_path, -3.0, offset)
        net = nd.Network("h")
        net.output(op(net.input("x", (2, 5)), name="h"), "y")
        with use_route("compiled"):
            got = nd.compile(net, "openvino")(x=x)["y"]
        np.testing.assert_allclose(got, -3.0 * x + offset, rtol=1e-6)
