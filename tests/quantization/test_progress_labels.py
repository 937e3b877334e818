"""Every progress bar quantization shows says what it is doing."""
from __future__ import annotations

import re

import numpy as np
import pytest

import netdsl as nd
import netdsl.functional as F
from netdsl import progress


def _net():
    net = nd.Network("labels")
    x = net.input("x", ("N", 2, 8, 8))
    y = F.relu(F.conv(x, net.parameter("c.w", (4, 2, 3, 3)), net.parameter("c.b", (4,)), padding=1, name="c"))
    y = F.relu(F.conv(y, net.parameter("c2.w", (4, 4, 3, 3)), None, padding=1, name="c2"))
    net.output(F.linear(F.flatten(y), net.parameter("fc.w", (5, 256)), None, name="fc"), "out")
    net.init_random(0)
    return net


@pytest.mark.parametrize("options", [dict(keep_float=1, rounding="gptq", refine_ranges=True),
                                     dict(keep_float="auto", min_sqnr=60.0), dict(wide_activations="auto")])
def test_every_quantization_progress_bar_has_a_label(options, capsys):
    rng = np.random.default_rng(1)
    batches = [{"x": rng.standard_normal((4, 2, 8, 8)).astype(np.float32)} for _ in range(3)]
    progress.set_enabled(True)
    try:
        nd.quantize(_net(), batches, backend="reference", **options)
    finally:
        progress.set_enabled(None)
    bars = [s.strip() for s in re.split(r"[\r\n]", capsys.readouterr().err) if "%|" in s or "it/s" in s]
    bars = [re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", s).strip() for s in bars]
    assert bars, "no progress bar was shown"
    unlabeled = [s for s in bars if not re.match(r"[a-z][^:|]*: ", s)]
    assert not unlabeled, unlabeled[:3]


def test_a_bar_without_a_label_is_refused():
    with pytest.raises(ValueError, match="desc"):
        progress.progress(total=1, desc="")
