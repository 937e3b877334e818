"""Conformance cases for every catalogue op (see cases.py for the format), by category."""
from __future__ import annotations

from . import (cases_branches, cases_corners, cases_dynamic, cases_elementwise, cases_nn, cases_preprocess,  # noqa: F401
               cases_quantize, cases_reduce, cases_same, cases_shape, cases_swaps)  # (they call cases.add)
