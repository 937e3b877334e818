"""Cache entries that prove what they hold: each carries its key and an HMAC-SHA256 of key and payload.

A cache directory is treated as untrusted: it may be shared, copied from another machine, corrupted,
or written by someone else. A checksum alone would not do (whoever can write the directory can
recompute it), so entries are sealed with a secret kept outside any cache directory:
``$NETDSL_CACHE_SECRET`` (hex), else ``$XDG_CONFIG_HOME/netdsl/cache-secret`` (default
``~/.config/netdsl``), created with 32 random bytes and mode 0600 on first use. It is used only when
it is a regular file of this user that nobody else may read or write (not a symlink); when it cannot
be trusted or created, a secret for this process alone is used (entries then serve only this process).

An entry is one file: :data:`MAGIC`, a 4-byte header length, a JSON header ``{kind, key, size,
hmac, meta}``, then the payload. :func:`read` returns the payload only when the magic, kind, key,
size and HMAC all match; otherwise it logs why and returns None, and the caller rebuilds (and
:func:`write` replaces the entry atomically).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

log = logging.getLogger("netdsl.cache")

MAGIC = b"NETDSL-VERIFIED-CACHE-1\n"
_MAX_HEADER = 1 << 20
_secret: Optional[bytes] = None
_lock = threading.Lock()


def secret_path() -> str:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "netdsl", "cache-secret")


def secret() -> bytes:
    """The key entries are sealed with (see the module docstring for where it lives)."""
    global _secret
    with _lock:
        env = os.environ.get("NETDSL_CACHE_SECRET")
        if env:
            try:
                return bytes.fromhex(env)
            except ValueError:
                log.warning("NETDSL_CACHE_SECRET is not hex: using a secret for this process only")
        if _secret is None:
            _secret = _load_or_create(secret_path())
        return _secret


def _trusted(fd: int, path: str) -> bool:
    """Whether the open secret file ``fd`` can be trusted: a regular file of this user that no one else
    may read or write (anyone who can read it can forge entries; anyone who can write it can choose it)."""
    st = os.fstat(fd)
    why = ("not a regular file" if not stat.S_ISREG(st.st_mode) else
           "owned by another user" if hasattr(os, "geteuid") and st.st_uid != os.geteuid() else
           f"mode {stat.S_IMODE(st.st_mode):o}: others may read or write it" if st.st_mode & 0o077 else "")
    if why:
        log.warning("cache secret %s is %s: not used; cache entries will serve this process only "
                    "(remove the file to have a new one made)", path, why)
    return not why


def _load_or_create(path: str, retry: bool = True) -> bytes:
    """The secret stored at ``path`` (made on first use), or one for this process only when the file cannot
    be trusted or made (see :func:`_trusted`)."""
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    s = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_RDONLY | nofollow | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        fd = -1
    except OSError as e:  # a symlink (ELOOP), a directory, unreadable ...
        log.warning("cannot read the cache secret %s (%s): cache entries will serve this process only", path, e)
        return s
    if fd >= 0:
        try:
            if not _trusted(fd, path):
                return s
            got = os.read(fd, 256)
        finally:
            os.close(fd)
        if len(got) >= 32:
            return got
        log.warning("cache secret %s is shorter than 32 bytes: not used; cache entries will serve this process "
                    "only (remove the file to have a new one made)", path)
        return s
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | nofollow, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(s)
        return s
    except FileExistsError:  # another process created it meanwhile: use theirs
        return _load_or_create(path, retry=False) if retry else s
    except OSError as e:
        log.warning("cannot store the cache secret at %s (%s): cache entries will serve this process only", path, e)
        return s


_CHUNK = 16 << 20
_pool: Optional[ThreadPoolExecutor] = None


def chunk_digests(data: Any) -> bytes:
    """SHA-256 of each 16 MiB piece of ``data`` (bytes-like), concatenated: computed in threads (hashlib
    releases the GIL), so a large payload is hashed at the speed of all cores."""
    global _pool
    mv = memoryview(data).cast("B")
    pieces = [mv[i:i + _CHUNK] for i in range(0, len(mv), _CHUNK)] or [mv]
    if len(pieces) == 1:
        return hashlib.sha256(pieces[0]).digest()
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max(1, min(16, os.cpu_count() or 1)), thread_name_prefix="netdsl-hash")
    return b"".join(_pool.map(lambda p: hashlib.sha256(p).digest(), pieces))


def _mac(kind: str, key: str, payload: Any, meta: dict) -> str:
    h = hmac.new(secret(), digestmod=hashlib.sha256)
    h.update(json.dumps([kind, key, len(payload), meta], sort_keys=True).encode())
    h.update(chunk_digests(payload))
    return h.hexdigest()


def atomic_write(path: str, *chunks: bytes) -> None:
    """Write ``chunks`` to ``path`` via a temporary file + ``os.replace`` (readers never see half a file)."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".netdsl-", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; an ordinary file
    try:
        with os.fdopen(fd, "wb") as f:
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write(path: str, kind: str, key: str, payload: bytes, meta: Optional[dict] = None) -> str:
    """Seal ``payload`` under ``key`` and write it to ``path`` atomically; returns ``path``."""
    meta = dict(meta or {})
    head = json.dumps({"kind": kind, "key": key, "size": len(payload), "hmac": _mac(kind, key, payload, meta),
                       "meta": meta}, sort_keys=True).encode()
    atomic_write(path, MAGIC + len(head).to_bytes(4, "little") + head, payload)
    return path


def verify(data: Any, kind: str, key: str) -> tuple[memoryview, dict]:
    """``(payload, meta)`` of an entry's bytes, or ValueError saying why it must not be used."""
    data = memoryview(data)
    if not data:
        raise ValueError("empty file")
    if bytes(data[:len(MAGIC)]) != MAGIC:
        raise ValueError("not a netdsl cache entry (no header)")
    n = int.from_bytes(bytes(data[len(MAGIC):len(MAGIC) + 4]), "little")
    if n > _MAX_HEADER:
        raise ValueError("header too large")
    try:
        head = json.loads(bytes(data[len(MAGIC) + 4:len(MAGIC) + 4 + n]))
    except (ValueError, UnicodeError):
        raise ValueError("unreadable header") from None
    if not isinstance(head, dict) or head.get("kind") != kind:
        raise ValueError(f"not a {kind} entry")
    if head.get("key") != key:
        raise ValueError(f"it holds another key ({str(head.get('key'))[:16]}...)")
    payload = data[len(MAGIC) + 4 + n:]
    meta = head.get("meta") if isinstance(head.get("meta"), dict) else {}
    if not payload or head.get("size") != len(payload):
        raise ValueError(f"payload of {len(payload)} bytes, header says {head.get('size')}: truncated")
    if not hmac.compare_digest(str(head.get("hmac")), _mac(kind, key, payload, meta)):
        raise ValueError("its HMAC does not match: corrupted, or not written by netdsl with this user's secret")
    return payload, meta


def read(path: str, kind: str, key: str) -> Optional[tuple[memoryview, dict]]:
    """``(payload, meta)`` of a verified entry at ``path``, or None (absent or unusable: rebuild). The
    entry is read into private, writable memory first (nothing can change it between the check and its
    use); only regular files of this user are read (not symlinks, FIFOs or devices, which could point at
    another file, block for ever, or never end)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as e:
        log.warning("cache entry %s is unreadable (%s): rebuilding", path, e)
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                log.warning("cache entry %s is not a regular file: rebuilding", path)
                return None
            if hasattr(os, "getuid") and st.st_uid != os.getuid():
                log.warning("cache entry %s belongs to another user: rebuilding", path)
                return None
            data = bytearray(st.st_size)
            got = f.readinto(data)
    except (OSError, MemoryError) as e:
        log.warning("cache entry %s is unreadable (%s): rebuilding", path, type(e).__name__ if not str(e) else e)
        return None
    try:
        return verify(memoryview(data)[:got], kind, key)
    except (ValueError, OSError) as e:  # OSError: the secret could not be read
        log.warning("cache entry %s is unusable (%s): rebuilding", path, e)
        return None
