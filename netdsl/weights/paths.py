"""Which other files a checkpoint may read: the containment policy for ONNX external data and safetensors shards.

A checkpoint that names other files (ONNX ``external_data``, a safetensors index's shards, the
``*.safetensors`` files of a directory) may only read regular files whose *real* path (every
symlink resolved) lies inside one of its roots:

* the directory holding the checkpoint (or the directory given), symlinks resolved;
* the real directory of the checkpoint file itself when that file is a symlink;
* the ``blobs/`` folder of a Hugging Face cache when the checkpoint lies under
  ``<repo>/snapshots/<revision>/`` (the cache keeps snapshot files as relative symlinks into
  ``<repo>/blobs/``) and ``blobs`` is a folder itself, not a symlink.

So a Hugging Face cache loads as it is, while a ``data.bin`` that is a symlink to ``/etc/passwd``
(or to any file outside those directories) is refused, as are absolute and ``..`` names.
"""
from __future__ import annotations

import os
import stat

from ..errors import WeightError


def allowed_roots(path: str) -> list[str]:
    """The real directories a checkpoint at ``path`` (a file or a directory) may read other files from."""
    p = os.path.abspath(path)
    here = p if os.path.isdir(p) else os.path.dirname(p)
    roots = [os.path.realpath(here)]
    if not os.path.isdir(p):
        roots.append(os.path.dirname(os.path.realpath(p)))
    d = here
    while True:
        parent = os.path.dirname(d)
        if os.path.basename(parent) == "snapshots":
            repo = os.path.dirname(parent)
            blobs = os.path.join(repo, "blobs")
            # a real folder beside snapshots/, not a link: a tree shaped like a hub cache whose blobs/ links
            # to / (or anywhere) would otherwise open every file to the checkpoint
            if os.path.isdir(blobs) and not os.path.islink(blobs) \
                    and os.path.realpath(blobs) == os.path.join(os.path.realpath(repo), "blobs"):
                roots.append(os.path.realpath(blobs))
            break
        if parent == d:
            break
        d = parent
    return list(dict.fromkeys(roots))


def resolve_inside(base: str, name: str, roots: list[str], what: str, where: str) -> str:
    """The real path of ``name`` (relative to directory ``base``) if it is a regular file inside one of
    ``roots``; otherwise a WeightError naming ``where`` and ``what``."""
    if not name or os.path.isabs(name) or ".." in name.replace("\\", "/").split("/") or "\0" in name:
        raise WeightError(f"{where}: {what} {name!r} is not a file beside the checkpoint")
    real = os.path.realpath(os.path.join(base, name))
    if not any(os.path.commonpath([real, r]) == r for r in roots):
        raise WeightError(f"{where}: {what} {name!r} resolves to {real}, outside the checkpoint's directory "
                          f"({' or '.join(roots)}): refused (symlink escape?)")
    try:
        st = os.stat(real)
    except OSError:
        raise WeightError(f"{where}: {what} {name!r} is missing") from None
    if not stat.S_ISREG(st.st_mode):
        raise WeightError(f"{where}: {what} {name!r} is not a regular file")
    return real
