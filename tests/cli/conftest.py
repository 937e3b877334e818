"""Shared fixtures of the command-line tests: run ``netdsl`` in-process or as a user does (a subprocess)."""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Callable

import pytest

from netdsl.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")
LENET = os.path.join(EXAMPLES, "lenet.py")

# a small network with a symbolic batch N (and nothing else symbolic)
DYN_MODEL = '''
import netdsl as nd
from netdsl import nn

class Block(nn.Module):
    def __init__(self, name=None):
        super().__init__(name)
        self.fc1, self.fc2, self.relu = nn.Linear(8, 8), nn.Linear(8, 8), nn.ReLU()

    def forward(self, x):
        return self.relu(self.fc2(self.relu(self.fc1(x))) + x)

def network():
    net = nd.Network("dyn")
    x = net.input("x", ("N", 8))
    net.output(nn.Linear(8, 4, name="head")(Block(name="block")(x)), "y")
    return net
'''


@pytest.fixture
def cli(capsys) -> Callable:
    """``cli(*argv) -> (exit code, stdout, stderr)`` through :func:`netdsl.cli.main` (usage errors that
    argparse reports exit through SystemExit: their code is returned the same way)."""
    def run(*argv: str) -> tuple:
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as e:
            rc = e.code
        out = capsys.readouterr()
        return rc, out.out, out.err
    return run


@pytest.fixture
def netdsl_cmd() -> Callable:
    """``netdsl_cmd(*argv) -> CompletedProcess``: ``python -m netdsl.cli`` in a fresh process."""
    def run(*argv: str, **kw) -> subprocess.CompletedProcess:
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        return subprocess.run([sys.executable, "-m", "netdsl.cli", *[str(a) for a in argv]], capture_output=True,
                              text=True, env=env, **kw)
    return run


@pytest.fixture
def dyn_model(tmp_path) -> str:
    p = tmp_path / "dyn.py"
    p.write_text(DYN_MODEL)
    return str(p)


# a model file whose plugin op is deliberately wrong on OpenVINO: tanh(x) + 0.05 instead of tanh(x)
BROKEN_MODEL = '''
import numpy as np
import netdsl as nd
from netdsl import nn
from netdsl.plugins import declare


def _wrong_on_openvino(ctx, node, x):
    import openvino.opset16 as ops
    return ops.add(ops.tanh(x), ctx.scalar(0.05, x))


squash = declare("test_cli_squash", infer=lambda x: x, reference=lambda x: np.tanh(x),
                 openvino=_wrong_on_openvino, replace=True)


class Block(nn.Module):
    def __init__(self, name=None):
        super().__init__(name)
        self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x):
        h = nd.relu(self.fc1(x))
        h = squash(h, name="squash")
        return self.fc2(h) + x


def network():
    net = nd.Network("broken")
    x = net.input("x", ("N", 8))
    net.output(nn.Linear(8, 4, name="head")(Block(name="block")(x)), "y")
    return net
'''
BROKEN_LINE = 24  # the line of squash(...) above


@pytest.fixture
def broken_model(tmp_path) -> str:
    p = tmp_path / "broken_model.py"
    p.write_text(BROKEN_MODEL)
    return str(p)
