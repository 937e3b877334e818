"""Re-export of netdsl.compare for the conformance tests (element-wise limits by precision and op)."""
from netdsl.compare import (TOLERANCES, assert_close, close, errors, graph_ops, graph_tolerance,  # noqa: F401
                            tolerance)
