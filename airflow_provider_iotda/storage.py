"""Writing one whole object through ``ObjectStoragePath``: all of it, or nothing new.

Local files get a temporary sibling that is synced and renamed over the target; object stores
get the whole object in one write (a single PUT), and a failed write never removes an object
that was there before.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

_LOCAL_PROTOCOLS = frozenset({"file", "local"})


def write_object(path: ObjectStoragePath, data: bytes) -> None:
    """Write ``data`` as the whole object at ``path``, or leave nothing new behind.

    Local files (``file``/``local``) are written to a hidden temporary sibling, synced and
    renamed over the target (atomic on POSIX; parents are created).  Other schemes get the
    whole object in one write (a single PUT on object stores); if that fails, a partial object
    that did not exist before is removed, and a buffered upload is discarded, not committed.
    """
    if (path.protocol or "file") in _LOCAL_PROTOCOLS:
        _write_local(path.path, data)
    else:
        _write_remote(path, data)


def _write_local(target: str, data: bytes) -> None:
    directory, name = os.path.split(target)
    os.makedirs(directory or ".", exist_ok=True)
    temporary = os.path.join(directory, f".{name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(temporary, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _write_remote(path: ObjectStoragePath, data: bytes) -> None:
    fs = path.fs
    key = path.path
    existed = _may_exist(fs, key)
    handle = fs.open(key, "wb")
    try:
        handle.write(data)
    except BaseException:
        _abandon(handle)
        _remove_new_object(fs, key, existed)
        raise
    try:
        handle.close()  # the commit: one PUT, or the completion of a multipart upload
    except BaseException:
        _remove_new_object(fs, key, existed)
        raise


def _may_exist(fs: Any, key: str) -> bool:
    """Whether an object may be at ``key``: only a clear "no" counts as absent, so a failed
    check can never make a failed write remove the object that was there."""
    try:
        return bool(fs.exists(key))
    except Exception:
        return True


def _abandon(handle: Any) -> None:
    """Throw a half-written file away without committing it (buffered uploads commit on close)."""
    discard = getattr(handle, "discard", None)
    if callable(discard):
        with contextlib.suppress(Exception):  # best effort; the caller re-raises the real error
            discard()
    try:
        handle.closed = True  # fsspec buffered files: close() / __del__ would upload the buffer
    except (AttributeError, TypeError):
        with contextlib.suppress(Exception):
            handle.close()


def _remove_new_object(fs: Any, key: str, existed: bool) -> None:
    if existed:
        return  # a failed single write leaves the previous object in place on object stores
    try:
        if fs.exists(key):
            fs.rm_file(key)
    except Exception:  # noqa: S110 - best effort; the caller re-raises the real error
        pass
