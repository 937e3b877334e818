"""tensorrtx .wts exactly as wang-xinyu/tensorrtx gen_wts.py scripts write them (e.g. yolov10/gen_wts.py,
resnet/gen_wts.py): a count line, then per state_dict entry ``f.write('{} {} '.format(k, len(vr)))`` and
for each value ``f.write(' ')`` + ``struct.pack('>f', float(vv)).hex()`` -- so two spaces before the first
hex word -- and ``'\\n'``."""
from __future__ import annotations

import io
import struct

import numpy as np

from netdsl.weights import detect_format, open_checkpoint
from netdsl.weights.cli import weights_command


def gen_wts(state_dict: dict, path) -> None:
    with open(path, "w") as f:
        f.write('{}\n'.format(len(state_dict.keys())))
        for k, v in state_dict.items():
            vr = v.reshape(-1)
            f.write('{} {} '.format(k, len(vr)))
            for vv in vr:
                f.write(' ')
                f.write(struct.pack('>f', float(vv)).hex())
            f.write('\n')


def test_gen_wts_layout(tmp_path, rng):
    sd = {"model.0.conv.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
          "model.0.bn.weight": rng.standard_normal(4).astype(np.float32),
          "model.0.bn.num_batches_tracked": np.array(7, np.int64),      # 0-d int tensor: one value, as float
          "model.1.empty": np.zeros(0, np.float32),
          "head.bias": np.array([-0.0, np.inf, 1e-40], np.float32)}      # signed zero, inf, a subnormal
    p = tmp_path / "m.wts"
    gen_wts(sd, p)
    text = p.read_text()
    assert text.splitlines()[1].startswith("model.0.conv.weight 108  ")   # the double space
    assert detect_format(str(p)) == "wts"
    with open_checkpoint(p) as c:
        assert c.names() == list(sd)
        assert c.info("model.0.conv.weight").shape == (108,)
        for k, v in sd.items():
            got = c.read(k)
            np.testing.assert_array_equal(got, np.asarray(v, np.float32).reshape(-1), err_msg=k)
        assert np.signbit(c.read("head.bias")[0])
    out = io.StringIO()
    assert weights_command(str(p), out=out) == 0
    assert "model.0.bn.num_batches_tracked" in out.getvalue()
