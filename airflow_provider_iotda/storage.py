"""Writing one whole object through ``ObjectStoragePath``: all of it, or nothing new.

Local files get a temporary sibling that is synced and renamed over the target; object stores
get the whole object in one write (a single PUT), and a failed write never removes an object
that was there before.  :func:`resolve` finds the destination's filesystem before any work is
done, naming the package to install when there is none.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

_LOCAL_PROTOCOLS = frozenset({"file", "local"})
#: The package that registers a scheme's filesystem with Airflow (README, "Storage").
SCHEME_PACKAGES = {scheme: "apache-airflow-providers-amazon[s3fs]" for scheme in ("s3", "s3a")}
#: The ``open()`` keyword that sets an object's content type, by scheme (s3fs: boto3's name).
_CONTENT_TYPE_OPTIONS = {"s3": "ContentType", "s3a": "ContentType"}


class StorageUnavailableError(RuntimeError):
    """The destination's scheme has no filesystem in this Airflow installation."""


def resolve(url: str) -> ObjectStoragePath:
    """``url`` as an ``ObjectStoragePath`` whose filesystem is ready; raises
    :class:`StorageUnavailableError` naming the package to install when there is none."""
    from airflow.sdk import ObjectStoragePath

    path = ObjectStoragePath(url)
    scheme = path.protocol or "file"
    try:
        path.fs  # noqa: B018 - resolving the filesystem is the point
    except (ValueError, ImportError) as exc:
        package = SCHEME_PACKAGES.get(scheme)
        advice = (
            f"install {package} where the tasks run"
            if package
            else f"install the Airflow provider that registers the {scheme!r} filesystem"
        )
        raise StorageUnavailableError(
            f"Cannot write {url}: no filesystem for {scheme}:// ({exc}); {advice}"
        ) from exc
    return path


def exists(path: ObjectStoragePath) -> bool | None:
    """Whether an object is at ``path``; ``None`` when the check itself failed."""
    try:
        if (path.protocol or "file") in _LOCAL_PROTOCOLS:
            return os.path.exists(path.path)
        return bool(path.fs.exists(path.path))
    except Exception:
        return None


def write_object(path: ObjectStoragePath, data: bytes, *, content_type: str | None = None) -> None:
    """Write ``data`` as the whole object at ``path``, or leave nothing new behind.

    Local files (``file``/``local``) are written to a hidden temporary sibling, synced and
    renamed over the target (atomic on POSIX; parents are created).  Other schemes get the
    whole object in one write (a single PUT on object stores); if that fails, a partial object
    that did not exist before is removed, and a buffered upload is discarded, not committed.
    ``content_type`` is set on objects of the stores that take one (S3 and S3-compatible).
    """
    protocol = path.protocol or "file"
    if protocol in _LOCAL_PROTOCOLS:
        _write_local(path.path, data)
    else:
        option = _CONTENT_TYPE_OPTIONS.get(protocol)
        _write_remote(path, data, {option: content_type} if option and content_type else {})


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


def _write_remote(path: ObjectStoragePath, data: bytes, options: dict[str, str]) -> None:
    fs = path.fs
    key = path.path
    # Only a clear "no" counts as absent: a failed check must never make the clean-up after a
    # failed write remove the object that was there.
    existed = exists(path) is not False
    handle = fs.open(key, "wb", **options)
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
