"""The wheel ships every file of the netdsl package that the code reads at run time (py.typed, the C++
headers plugin authors include): each non-Python file under netdsl/ matches pyproject's package-data."""
from __future__ import annotations

import fnmatch
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = os.path.join(ROOT, "netdsl")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib needs Python 3.11")
def test_package_data_covers_every_non_python_file():
    import tomllib
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        patterns = tomllib.load(f)["tool"]["setuptools"]["package-data"]["netdsl"]
    files = [os.path.relpath(os.path.join(d, n), PKG).replace(os.sep, "/")
             for d, _, names in os.walk(PKG) if "__pycache__" not in d for n in names if not n.endswith(".py")]
    assert "plugins/include/netdsl_plugin.hpp" in files
    missing = [f for f in files if not any(fnmatch.fnmatchcase(f, p) for p in patterns)]
    assert not missing, f"not in the wheel (add to [tool.setuptools.package-data] in pyproject.toml): {missing}"
