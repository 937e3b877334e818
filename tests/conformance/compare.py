"""Re-export of netdsl.compare for the conformance tests."""
from netdsl.compare import TOLERANCES, assert_close, errors  # noqa: F401
