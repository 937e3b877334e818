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
