"""Conformance cases for every catalogue op (see cases.py for the format), by category."""
from __future__ import annotations

from . import (cases_dynamic, cases_elementwise, cases_nn, cases_preprocess, cases_quantize,  # noqa: F401
               cases_reduce, cases_shape)  # (they call cases.add)
