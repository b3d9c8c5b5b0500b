"""Writing one whole object through ``ObjectStoragePath``: all of it, or nothing new.

Local files get a temporary sibling that is synced and renamed over the target; object stores
get the whole object in one write (a single PUT), and a failed write never removes an object
that was there before.  :func:`resolve` finds the destination's filesystem before any work is
done, naming the package to install when there is none; :func:`check_scheme` refuses, when
the DAG is parsed, a scheme no filesystem can open (such as ``obs://``: OBS is reached as S3).
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

_LOCAL_PROTOCOLS = frozenset({"file", "local"})
#: What registers a scheme's filesystem with Airflow: (package, extra).
SCHEME_PACKAGES = {scheme: ("apache-airflow-providers-amazon", "s3fs") for scheme in ("s3", "s3a")}
#: The ``open()`` keyword that sets an object's content type, by scheme (s3fs: boto3's name).
_CONTENT_TYPE_OPTIONS = {"s3": "ContentType", "s3a": "ContentType"}
#: A URL's scheme; a scheme written with a template is not known before the task runs.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
#: Huawei OBS speaks the S3 API: the way to it through Airflow's S3 filesystem.
OBS_ROUTE = (
    "Huawei OBS is S3-compatible: write to s3://AWS_CONN_ID@BUCKET/KEY with an Amazon Web "
    "Services connection whose extra endpoint_url is the OBS endpoint of the bucket's region, "
    "e.g. https://obs.cn-north-4.myhuaweicloud.com (apache-airflow-providers-amazon with its "
    "s3fs extra reads and writes it)"
)


class StorageUnavailableError(RuntimeError):
    """The destination's scheme has no filesystem in this Airflow installation."""


def registered_schemes() -> list[str]:
    """The schemes Airflow can open here: those ``ObjectStoragePath`` (universal-pathlib over
    fsspec) knows and for which Airflow has a filesystem (its ``has_fs``)."""
    from airflow.sdk.io import has_fs
    from upath.registry import available_implementations

    return sorted(
        s for s in {"file", "local", *available_implementations(fallback=True)} if has_fs(s)
    )


def _unavailable(url: str, scheme: str, field: str, cause: object) -> str:
    """Why ``url`` cannot be opened and what to do: the schemes there are, the OBS route, or the
    package that registers a known scheme."""
    registered = ", ".join(f"{s}://" for s in registered_schemes()) or "none"
    message = (
        f"{field} {url!r} uses the scheme {scheme}://, for which Airflow has no filesystem here "
        f"({cause}); the schemes registered here are {registered}"
    )
    if scheme.lower() == "obs":
        return f"{message}. {OBS_ROUTE}"
    package = SCHEME_PACKAGES.get(scheme.lower())
    if package is not None:
        return f"{message}; install {package[0]} with its {package[1]} extra where the tasks run"
    return f"{message}; install the Airflow provider that registers the {scheme}:// filesystem"


def check_scheme(url: object, field: str = "destination") -> None:
    """At DAG-parse time: refuse a URL whose scheme no filesystem can open (fsspec does not
    know it, as ``obs://``), naming ``field``, the registered schemes and, for OBS, the S3
    route.  A scheme written with a template, a path and a non-string are left alone; whether
    Airflow has the filesystem is checked by :func:`resolve` where the task runs."""
    if not isinstance(url, str):
        return
    match = _SCHEME.match(url.strip())
    if match is None:
        return
    from upath.registry import get_upath_class

    scheme = match.group(1)
    if get_upath_class(scheme.lower()) is None:  # what makes ObjectStoragePath refuse it
        raise ValueError(_unavailable(url.strip(), scheme, field, "fsspec does not know it"))


def resolve(url: str, field: str = "destination") -> ObjectStoragePath:
    """``url`` as an ``ObjectStoragePath`` whose filesystem is ready; raises
    :class:`StorageUnavailableError` naming ``field``, the schemes registered and the package to
    install when there is none."""
    from airflow.sdk import ObjectStoragePath

    match = _SCHEME.match(url)
    scheme = match.group(1) if match else "file"
    try:
        path = ObjectStoragePath(url)
        path.fs  # noqa: B018 - resolving the filesystem is the point
    except (ValueError, ImportError) as exc:
        raise StorageUnavailableError(_unavailable(url, scheme, field, exc)) from exc
    return path


def exists(path: ObjectStoragePath) -> bool | None:
    """Whether an object is at ``path``; ``None`` when the check itself failed."""
    try:
        if (path.protocol or "file") in _LOCAL_PROTOCOLS:
            return os.path.exists(path.path)
        return bool(path.fs.exists(path.path))
    except Exception:
        return None


def open_or_fail(url: str, field: str = "destination") -> ObjectStoragePath:
    """:func:`resolve` for an operator: a missing filesystem fails the task without retries."""
    from airflow_provider_iotda.compat import AirflowFailException

    try:
        return resolve(url, field)
    except StorageUnavailableError as exc:
        raise AirflowFailException(str(exc)) from exc


def write_or_raise(path: ObjectStoragePath, url: str, data: bytes, content_type: str) -> None:
    """:func:`write_object` for an operator: a failure is an ``AirflowException`` naming
    ``url`` (retried as any task failure)."""
    from airflow_provider_iotda.compat import AirflowException

    try:
        write_object(path, data, content_type=content_type)
    except Exception as exc:
        raise AirflowException(
            f"Could not write {url}: {type(exc).__name__}: {exc}; "
            "no partial object was left at the destination"
        ) from exc


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
