"""netdsl build: only build options in --help; per-backend validation; artifacts written."""
from __future__ import annotations

import pytest

from .conftest import LENET


def test_build_help_lists_only_build_options(cli):
    rc, out, _ = cli("build", "--help")
    assert rc == 0
    for useful in ("--backend", "--output", "--precision", "--dynamic", "--workspace", "--compress-fp16",
                   "--cache-dir", "--weights", "--random-weights"):
        assert useful in out, useful
    for useless in ("--hint", "--num-streams", "--device", "--input", "--dim"):
        assert useless not in out, useless
    assert "{openvino,tensorrt,onnx}" in out


@pytest.mark.parametrize("argv, words", [
    (["--backend", "onnx", "--precision", "f16"], ["--precision does nothing for backend onnx"]),
    (["--backend", "openvino", "--precision", "bf16"], ["--precision bf16", "openvino", "f32, f16"]),
    (["--backend", "onnx", "--compress-fp16"], ["--compress-fp16 does nothing for backend onnx",
                                                "applies to openvino"]),
    (["--backend", "openvino", "--workspace", "64"], ["--workspace does nothing for backend openvino"]),
    (["--backend", "reference"], ["invalid choice: 'reference'"]),
])
def test_build_rejects_options_that_do_nothing(cli, tmp_path, argv, words):
    rc, _, err = cli("build", LENET, *argv, "-o", tmp_path / "m.out")
    assert rc == 2, err
    for w in words:
        assert w in err, (w, err)
    assert not (tmp_path / "m.out").exists()


def test_build_openvino_f16_ir(cli, tmp_path):
    pytest.importorskip("openvino", reason="openvino is not installed")
    rc, out, err = cli("build", LENET, "--backend", "openvino", "--precision", "f16", "-o", tmp_path / "m.xml")
    assert rc == 0, err
    assert "built openvino artifact" in out and (tmp_path / "m.bin").stat().st_size < 431_080 * 4 * 0.6


ISLAND_MODEL = '''
import netdsl as nd, netdsl.functional as F
def network():
    net = nd.Network("island")
    x = net.input("x", ("N", 32))
    h = F.linear(x, net.parameter("w1", (32, 32)), None, name="fc1")
    h = F.linear(h, net.parameter("w2", (32, 32)), None, name="fc2")
    net.output(F.layer_norm(h, (32,), None, None, name="blk/layer_norm"), "y")
    return net
'''


def _ov_runtime_precisions(xml):
    """{node: precision} as OpenVINO's CPU plugin runs the IR at bf16 (OpenVINO's reader and compiler)."""
    import openvino as ov
    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(xml)), "CPU", {"INFERENCE_PRECISION_HINT": "bf16"})
    return {n.get_friendly_name(): n.get_rt_info()["runtimePrecision"].astype(str)
            for n in compiled.get_runtime_model().get_ordered_ops()}


def test_build_layer_precision_keeps_the_island_in_the_ir(cli, tmp_path):
    pytest.importorskip("openvino", reason="openvino is not installed")
    model = tmp_path / "island.py"
    model.write_text(ISLAND_MODEL)
    rc, _, err = cli("build", model, "--random-weights", "--layer-precision", "fc1=float32",
                     "-o", tmp_path / "k.xml")
    assert rc == 0, err
    rc, _, err = cli("build", model, "--random-weights", "-o", tmp_path / "p.xml")
    assert rc == 0, err
    plain = _ov_runtime_precisions(tmp_path / "p.xml")
    if plain["fc1"] != "bf16":
        pytest.skip(f"this CPU runs bf16 inference as {plain['fc1']}: no island to tell apart")
    kept = _ov_runtime_precisions(tmp_path / "k.xml")
    assert kept["fc1"] == "f32" and kept["fc2"] == "bf16", kept


@pytest.mark.parametrize("argv, words", [
    (["--layer-precision", "fc1"], ["--layer-precision expects PATTERN=TYPE", "'fc1'"]),
    (["--layer-precision", "nothing*=float32"], ["'nothing*'", "matches no layer"]),
    (["--layer-precision", "fc1=int8"], ["'fc1'", "not a float type"]),
    (["--layer-precision", "fc1=bogus"], ["'fc1'", "unsupported dtype 'bogus'"]),  # was an internal TypeError
    (["--layer-precision", "fc1=float32", "--layer-precision", "fc1=float16"], ["'fc1' given twice"]),
    (["--backend", "onnx", "--layer-precision", "fc1=float32"], ["--layer-precision does nothing for backend onnx"]),
])
def test_build_layer_precision_errors(cli, tmp_path, argv, words):
    pytest.importorskip("openvino", reason="openvino is not installed")
    model = tmp_path / "island.py"
    model.write_text(ISLAND_MODEL)
    out = tmp_path / ("m.onnx" if "onnx" in argv else "m.xml")
    rc, _, err = cli("build", model, "--random-weights", *argv, "-o", out)
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    for w in words:
        assert w in err, (w, err)


def test_build_layer_precision_keeps_the_island_in_the_tensorrt_network(cli, tmp_path):
    """The plan is written (TensorRT's builder took the option); the network TensorRT holds for the same
    command line, read back through TensorRT's API, has the island in FLOAT and the rest in HALF."""
    pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed")
    from netdsl.backends import tensorrt as trtb
    from netdsl.backends.tensorrt import inspect
    from netdsl.cli import build_parser
    from netdsl.cli.common import backend_options, prepare
    model = tmp_path / "island.py"
    model.write_text(ISLAND_MODEL)
    argv = ["build", str(model), "--random-weights", "--precision", "f16", "--layer-precision",
            "*layer_norm*=float32", "-o", str(tmp_path / "m.plan")]
    rc, _, err = cli(*argv)
    assert rc == 0 and (tmp_path / "m.plan").stat().st_size > 0, err
    args = build_parser().parse_args(argv)
    opts = backend_options(args, "tensorrt")
    tn = trtb.network(prepare(args).graph, **{k: v for k, v in opts.items() if k != "cache_dir"})
    types = {layer.name: layer.dtypes[0] for layer in inspect.read(tn.network, tn.trt)}
    assert types["blk/layer_norm"] == "FLOAT" and types["fc1"] == "HALF" and types["fc2"] == "HALF", types
