"""Protocol-buffer text format (what Triton's ``config.pbtxt`` is) from nested Python values.

``{"name": "m", "input": [{...}], "dims": [1, 2], "data_type": Enum("TYPE_FP32")}`` becomes the text
that ``google.protobuf.text_format`` parses into a message: dicts are messages, lists of dicts are
repeated messages, lists of scalars are repeated scalars, :class:`Enum` values are written bare.
"""
from __future__ import annotations

import json
from typing import Any


class Enum(str):
    """An enum value: written without quotes (``kind: KIND_GPU``)."""


def _scalar(v: Any) -> str:
    if isinstance(v, Enum):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a double-quoted string with C-style escapes, which text_format reads
    raise TypeError(f"cannot write {type(v).__name__} {v!r} in protobuf text format")


def dumps(msg: dict, indent: int = 0) -> str:
    """The text format of message ``msg`` (fields in dict order; None values left out)."""
    pad = "  " * indent
    lines = []
    for key, v in msg.items():
        if v is None:
            continue
        if isinstance(v, dict):
            lines.append(f"{pad}{key} {{\n{dumps(v, indent + 1)}{pad}}}")
        elif isinstance(v, (list, tuple)):
            if v and all(isinstance(x, dict) for x in v):
                body = ",\n".join(f"{pad}  {{\n{dumps(x, indent + 2)}{pad}  }}" for x in v)
                lines.append(f"{pad}{key} [\n{body}\n{pad}]")
            else:
                lines.append(f"{pad}{key}: [ {', '.join(_scalar(x) for x in v)} ]")
        else:
            lines.append(f"{pad}{key}: {_scalar(v)}")
    return "".join(line + "\n" for line in lines)
